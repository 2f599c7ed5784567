/*
 * fd_leak.c - DEFECT: every session leaks one file descriptor.
 *
 * Thread per connection like ok_thread.c, but each session opens /dev/null
 * (say, a log it meant to write) and never closes it, so the server's
 * descriptor count grows by one per connection until accept() hits EMFILE.
 * The connection itself is closed correctly.
 */
#include "common.h"
#include <fcntl.h>

static void *session_thread(void *arg)
{
    struct session *s = arg;
    int log_fd = open("/dev/null", O_WRONLY);  /* DEFECT: never closed */
    (void)log_fd;
    serve(s->fd, s->proto);
    close(s->fd);
    free(s);
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
        start_detached(session_thread, new_session(cfd, proto));
    }
}
