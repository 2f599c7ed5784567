/*
 * backlog3.c - DEFECT: listen() backlog of 3.
 *
 * Exactly ok_thread.c except for the backlog: the kernel queues at most a
 * handful of completed connections, so in a burst of connects the SYNs that
 * find the queue full are dropped and those clients wait for a retransmit
 * (about a second) before they are even connected.
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
    int lfd = make_listener(port, 3);  /* DEFECT: instead of BACKLOG (128) */
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        start_detached(session_thread, new_session(cfd, proto));
    }
}
