/*
 * ok_fork.c - correct server, one process per connection.
 *
 * Design: the parent accepts and forks; the child closes the listening
 * socket, serves the session and _exit(0)s; the parent closes the connected
 * socket. Exited children are reaped by a SIGCHLD handler that loops over
 * waitpid(), installed with SA_RESTART so accept() is restarted (and retried
 * anyway). SIGTERM kills the parent, and each child with it (fork_child()).
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
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
