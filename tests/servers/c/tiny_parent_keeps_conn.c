/*
 * tiny_parent_keeps_conn.c - DEFECT: the parent keeps each connection open.
 *
 * As tiny_fork.c, but the parent never closes the connected socket after the
 * fork: the client never sees the end of the response (HTTP/1.0 delimits it by
 * the close for clients that ignore Content-Length), and the parent gains one
 * descriptor per request.
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
            close(lfd);
            serve_tiny(cfd);
            close(cfd);
            _exit(0);
        }
        /* DEFECT: no close(cfd) here. */
    }
}
