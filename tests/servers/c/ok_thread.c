/*
 * ok_thread.c - correct server, one detached POSIX thread per connection.
 *
 * Design: the main thread accepts and starts a detached thread per connection;
 * the thread serves the session, closes its socket and returns.
 */
#include "common.h"

static void *session_thread(void *arg)
{
    struct session *s = arg;
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
