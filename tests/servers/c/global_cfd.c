/*
 * global_cfd.c - DEFECT: the connected socket reaches its thread through a
 * global variable (the same bug as pthread_create(..., &cfd)).
 *
 * Thread per connection like ok_thread.c, but main() stores the accepted
 * descriptor in ONE global variable and the new thread reads it from there
 * when it starts. When a second accept() returns before the first thread has
 * read it, both threads serve the newer connection, and the older one is
 * served by nobody.
 */
#include "common.h"

static int g_cfd;  /* DEFECT: one variable for every new connection */

static void *session_thread(void *arg)
{
    enum protocol proto = (enum protocol)(long)arg;
    int fd = g_cfd;  /* DEFECT: may already be the next connection's */
    serve(fd, proto);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        g_cfd = cfd;
        start_detached(session_thread, (void *)(long)proto);
    }
}
