/*
 * tiny_accept_eintr_fatal.c - DEFECT: an accept() interrupted by SIGCHLD kills it.
 *
 * As tiny_fork.c, but the SIGCHLD handler is installed without SA_RESTART and
 * accept()'s EINTR is treated as fatal, so the server dies when the child of
 * its first request exits.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv, &port);  /* it speaks HTTP/1.0 whatever the profile */
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
            serve_tiny(cfd);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
