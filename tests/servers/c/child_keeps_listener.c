/*
 * child_keeps_listener.c - DEFECT: the child does not close the listening socket.
 *
 * Fork per connection like ok_fork.c, but the child keeps its copy of the
 * listening socket for the whole session, so the port stays held by every
 * session process (it cannot be rebound while a session lasts).
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
            /* DEFECT: no close(lfd) here. */
            serve(cfd, proto);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
