/*
 * busy_child.c - DEFECT: a child whose session ended spins forever instead of exiting.
 *
 * Fork per connection like ok_fork.c, but after the session the child closes
 * the connection and then busy-loops: the client sees a clean EOF, yet every
 * finished session leaves a process burning CPU.
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
            for (;;)  /* DEFECT: spins here instead of _exit(0) */
                ;
        }
        close(cfd);
    }
}
