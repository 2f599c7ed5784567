/*
 * tiny_fork.c - correct HTTP/1.0 server in the style of CS:APP's Tiny, one
 * process per connection.
 *
 * Each connection carries one request and its response, then the server
 * closes it (HTTP/1.0 without keep-alive; serve_tiny() in common.h). The
 * parent accepts and forks; the child closes the listening socket, serves the
 * request and _exit(0)s; the parent closes the connected socket. A SIGCHLD
 * handler installed with SA_RESTART reaps every exited child.
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
        close(cfd);
    }
}
