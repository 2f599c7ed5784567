/*
 * thread_leak.c - DEFECT: a session thread never ends.
 *
 * Thread per connection like ok_thread.c, but when its session is over the
 * thread closes the connection and then waits forever on a condition that
 * nobody signals, so the server gains one stuck thread per connection.
 */
#include "common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *session_thread(void *arg)
{
    struct session *s = arg;
    serve(s->fd, s->proto);
    close(s->fd);
    free(s);
    pthread_mutex_lock(&lock);
    for (;;)
        pthread_cond_wait(&never, &lock);  /* DEFECT: instead of returning */
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
