/*
 * no_reap.c - DEFECT: exited children are never reaped.
 *
 * Fork per connection like ok_fork.c, but there is no SIGCHLD handler and no
 * waitpid() anywhere, so every finished session leaves a zombie process.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
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
            serve(cfd, proto);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
