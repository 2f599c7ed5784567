/*
 * tiny_no_reap.c - DEFECT: Tiny-style HTTP/1.0 fork server that never reaps.
 *
 * As tiny_fork.c, but there is no SIGCHLD handler and no waitpid(), so every
 * request leaves a zombie process.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    parse_args(argc, argv, &port);  /* it speaks HTTP/1.0 whatever the profile */
    ignore_sigpipe();
    /* DEFECT: no on_sigchld(reap_children, ...) here. */
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
            serve_tiny(cfd);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
