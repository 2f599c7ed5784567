/*
 * accept_eintr_fatal.c - DEFECT: an accept() interrupted by SIGCHLD kills the server.
 *
 * Fork per connection like ok_fork.c with a correct reaping loop, but the
 * SIGCHLD handler is installed without SA_RESTART, so accept() fails with
 * EINTR whenever a child exits, and that failure is treated as fatal.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    on_sigchld(reap_children, SA_NOCLDSTOP);  /* DEFECT: no SA_RESTART ... */
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {  /* ... and EINTR is not retried */
            perror("accept");
            exit(1);
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
