/*
 * partial_write.c - DEFECT: one write() per chunk; what it did not take is lost.
 *
 * One thread, non-blocking sockets and a level-triggered epoll set like
 * ok_epoll.c, but with no output buffer: each chunk read (the echoed bytes,
 * or the OK!!! reply) is passed to ONE write() call, and whatever that
 * write() did not accept - the tail of a short write, or everything on
 * EAGAIN - is dropped instead of being kept until EPOLLOUT. Small exchanges
 * work; a large echo stream sent while the client reads loses data once the
 * socket's send buffer fills. Meant to be run with the echo profile.
 *
 * Not a defect: each connection gets a fixed 64 KiB SO_SNDBUF (ok_epoll.c
 * copes with any size). Without it Linux grows a loopback send buffer past
 * 1 MiB, and the loss would not show with a 1 MiB stream.
 */
#include "common.h"
#include <fcntl.h>
#include <sys/epoll.h>

#define MAX_EVENTS 64
#define SNDBUF 65536

struct conn {
    int fd;
};

static int epfd;
static enum protocol proto;

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
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept");
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (c == NULL)
            die("calloc");
        c->fd = fd;
        int size = SNDBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0)
            perror("setsockopt");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
}

/* One write() attempt; returns -1 when the connection was dropped. */
static int send_once(struct conn *c, const char *buf, size_t len)
{
    for (;;) {
        ssize_t n = write(c->fd, buf, len);
        if (n >= 0)
            return 0;  /* DEFECT: n < len is not finished; the rest is lost */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;  /* DEFECT: the whole chunk is lost, no EPOLLOUT wait */
        drop(c);
        return -1;
    }
}

/* One read, then one write of the reply (ok) or of the bytes themselves (echo). */
static void on_readable(struct conn *c)
{
    static char buf[ECHO_CHUNK];  /* one thread: one buffer serves every connection */
    size_t want = proto == PROTO_ECHO ? sizeof buf : MSG_MAX;
    ssize_t n = read(c->fd, buf, want);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        drop(c);
        return;
    }
    if (n == 0) {
        drop(c);
    } else if (proto == PROTO_ECHO) {
        send_once(c, buf, (size_t)n);
    } else if (send_once(c, REPLY, REPLY_LEN) == 0 && is_exit(buf, n)) {
        drop(c);
    }
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
            else
                on_readable(c);
        }
    }
}
