/*
 * slow_start.c - correct server that takes seconds to start listening.
 *
 * Design: ok_thread.c's, after a sleep of START_DELAY seconds (environment;
 * default 7) before the listening socket is opened, like a JVM application or
 * a server that loads its data first. Nothing is wrong with it: the kit must
 * wait for it when given --start-timeout, and name that option when it is not.
 */
#include "common.h"
#include <time.h>

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
    const char *delay = getenv("START_DELAY");
    double seconds = delay ? strtod(delay, NULL) : 7.0;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
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
