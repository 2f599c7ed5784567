/*
 * parent_keeps_conn.c - DEFECT: the parent does not close the connected socket.
 *
 * Fork per connection like ok_fork.c, but after fork() the parent keeps its
 * copy of the connected socket. When the child closes its copy the connection
 * is still open in the parent, so the client never sees EOF (not even after
 * exit), and the parent leaks one descriptor per connection.
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
        /* DEFECT: no close(cfd) here. */
    }
}
