/*
 * ok_epoll_eagain.c - correct server, one thread, non-blocking sockets and
 * epoll, that ends a connection on any error of accept, read or write but
 * EAGAIN, as production event loops do.
 *
 * Design: ok_epoll.c's without its EINTR retries around accept4(), read() and
 * write(). They are not needed: a call on a non-blocking socket never sleeps,
 * so no signal can make it fail with EINTR (the kernel returns EAGAIN before it
 * looks at pending signals). epoll_wait() does sleep, and retries EINTR. The
 * kit must not fail it for EINTR-3, whose injected EINTR is for calls that can
 * block.
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

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
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
    int lfd = make_listener(port, BACKLOG);
    if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0)
        die("fcntl");
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
