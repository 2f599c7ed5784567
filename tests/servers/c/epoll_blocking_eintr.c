/*
 * epoll_blocking_eintr.c - DEFECTIVE: ok_epoll_eagain.c's loop on blocking
 * sockets, so EINTR ends a connection.
 *
 * Design: one thread and epoll, as ok_epoll_eagain.c, ending a connection on any
 * error but EAGAIN. The defect: its sockets are blocking (no O_NONBLOCK, no
 * SOCK_NONBLOCK). A read on a blocking socket can sleep (readiness can be
 * spurious: select(2) BUGS), and a signal handler without SA_RESTART then makes
 * it fail with EINTR, which this loop takes for a broken connection. Breaks
 * EINTR-3 (EINTR injected with strace); EINTR-2's storm signals have no handler
 * here, so they interrupt nothing. C only: Python retries EINTR itself.
 */
#include "common.h"
#include <fcntl.h>
#include <sys/epoll.h>

#define MAX_EVENTS 64

struct conn {
    int fd;
    int closing;          /* close once out is drained */
    size_t off, len;      /* pending output is out[off..len) */
    char out[ECHO_CHUNK];
};

static int epfd;
static enum protocol proto;

static void watch(int op, struct conn *c, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
        die("epoll_ctl");
}

static void drop(struct conn *c)
{
    close(c->fd);  /* also removes it from the epoll set */
    free(c);
}

/* DEFECT: blocking sockets, so one accept per readiness (another would wait). */
static void accept_all(int lfd)
{
    for (int once = 1; once; once = 0) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept");
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL)
            die("calloc");
        c->fd = fd;
        watch(EPOLL_CTL_ADD, c, EPOLLIN);
    }
}

/* Writes what it can; returns -1 when the connection was dropped. */
static int flush(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = write(c->fd, c->out + c->off, c->len - c->off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                watch(EPOLL_CTL_MOD, c, EPOLLOUT);
                return 0;
            }
            drop(c);
            return -1;
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    if (c->closing) {
        drop(c);
        return -1;
    }
    watch(EPOLL_CTL_MOD, c, EPOLLIN);
    return 0;
}

/* One read, then queue the reply (ok) or the bytes themselves (echo). */
static void on_readable(struct conn *c)
{
    size_t want = proto == PROTO_ECHO ? sizeof c->out : MSG_MAX;
    char msg[MSG_MAX];
    char *dst = proto == PROTO_ECHO ? c->out : msg;
    ssize_t n = read(c->fd, dst, want);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        drop(c);  /* any other error ends the connection, EINTR included */
        return;
    }
    if (n == 0) {
        c->closing = 1;
    } else if (proto == PROTO_ECHO) {
        c->len = (size_t)n;
    } else {
        memcpy(c->out, REPLY, REPLY_LEN);
        c->len = REPLY_LEN;
        c->closing = is_exit(msg, n);
    }
    flush(c);
}

int main(int argc, char **argv)
{
    int port;
    proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    int lfd = make_listener(port, BACKLOG);  /* DEFECT: left blocking */
    epfd = epoll_create1(0);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL)
                accept_all(lfd);
            else if (c->len > 0)
                flush(c);
            else
                on_readable(c);
        }
    }
}
