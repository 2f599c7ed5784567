/*
 * thread_cap2.c - DEFECT: at most two sessions at a time.
 *
 * Thread per connection like ok_thread.c, but the accept loop takes a slot
 * of a two-slot semaphore before each accept() and a session gives it back
 * when it ends, so a third client waits until one of the first two leaves.
 */
#include "common.h"
#include <semaphore.h>

static sem_t slots;

static void *session_thread(void *arg)
{
    struct session *s = arg;
    serve(s->fd, s->proto);
    close(s->fd);
    free(s);
    sem_post(&slots);
    return NULL;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    sem_init(&slots, 0, 2);  /* DEFECT: an arbitrary cap on concurrent sessions */
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        while (sem_wait(&slots) < 0 && errno == EINTR)  /* WAITS here for a free slot */
            ;
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            sem_post(&slots);
            continue;
        }
        start_detached(session_thread, new_session(cfd, proto));
    }
}
