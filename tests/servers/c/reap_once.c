/*
 * reap_once.c - DEFECT: the SIGCHLD handler reaps one child per signal.
 *
 * Fork per connection like ok_fork.c, but the handler calls waitpid() once
 * instead of looping. Standard signals do not queue: children that exit while
 * a SIGCHLD is already pending produce a single signal, so when many sessions
 * end together some children are never reaped and stay zombies.
 */
#include "common.h"

static void reap_one_child(int sig)
{
    (void)sig;
    int saved = errno;
    waitpid(-1, NULL, WNOHANG);  /* DEFECT: no loop */
    errno = saved;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    on_sigchld(reap_one_child, SA_RESTART | SA_NOCLDSTOP);
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
