/*
 * tiny_child_keeps_listener.c - DEFECT: the child keeps the listening socket.
 *
 * As tiny_fork.c, but the child never closes the listening socket it
 * inherited from fork().
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv, &port);  /* it speaks HTTP/1.0 whatever the profile */
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
            /* DEFECT: no close(lfd) here. */
            serve_tiny(cfd);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
