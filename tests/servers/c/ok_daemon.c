/*
 * ok_daemon.c - correct fork-per-connection server that daemonizes itself.
 *
 * As ok_fork.c, but it first calls daemon(3), as many C servers do by
 * default: the process the shell started exits with status 0 at once, and its
 * child, in a session of its own, listens and serves. stderr is kept (noclose)
 * so its messages still reach the log.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    if (daemon(1, 1) < 0)
        die("daemon");
    ignore_sigpipe();
    on_sigchld(reap_children, SA_RESTART | SA_NOCLDSTOP);
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        pid_t pid = fork_child();
        if (pid < 0) {
            perror("fork");
        } else if (pid == 0) {
            close(lfd);
            serve(cfd, proto);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
