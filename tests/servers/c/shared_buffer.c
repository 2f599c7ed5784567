/*
 * shared_buffer.c - DEFECT: all sessions share one receive buffer, unlocked.
 *
 * Thread per connection like ok_thread.c, but the buffer that read() fills is
 * a single static array used by every session thread with no lock. Between
 * one thread's read() and its write() another thread may read into the same
 * bytes, so under load a client gets back bytes another client sent. Meant to
 * be run with the echo profile, where the mix-up is visible in the data.
 */
#include "common.h"

static char buf[ECHO_CHUNK];  /* DEFECT: shared by all threads */
static int debug;             /* ZOO_DEBUG set: report line counts */

static size_t count_lines(const char *p, ssize_t n)
{
    size_t lines = 0;
    for (ssize_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    return lines;
}

static void serve_shared(int fd, enum protocol proto)
{
    size_t want = proto == PROTO_ECHO ? sizeof buf : MSG_MAX;
    size_t lines = 0;
    for (;;) {
        ssize_t n = read_retry(fd, buf, want);
        if (n <= 0)
            break;
        lines += count_lines(buf, n);  /* a statistic: no sleep, just a little work */
        if (proto == PROTO_ECHO) {
            if (write_all(fd, buf, (size_t)n) < 0)
                break;
            continue;
        }
        if (write_all(fd, REPLY, REPLY_LEN) < 0 || is_exit(buf, n))
            break;
    }
    if (debug)
        fprintf(stderr, "fd %d: %zu lines\n", fd, lines);
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    serve_shared(s->fd, s->proto);
    close(s->fd);
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    debug = getenv("ZOO_DEBUG") != NULL;
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
