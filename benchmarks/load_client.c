/*
 * load_client.c - a minimal C load client, the yardstick for the kit's Python driver.
 *
 * It does what conformance/harness/driver.py does in its connect and run_for phases, with
 * nothing on top: N non-blocking connections on one level-triggered epoll set, at most
 * WINDOW of them connecting or waiting for their first reply at once, then closed-loop
 * rounds (send a 16-byte message, wait for the whole reply, send again) for SECONDS.
 * benchmarks/run.py runs both against the same server with the same N; the ratio of their
 * requests/s says how much of a test's load budget the driver itself costs.
 *
 * Usage: load_client PORT CLIENTS SECONDS [ok|echo]       (127.0.0.1 only)
 * Prints one JSON line: clients, served, requests, seconds, requests_per_s, errors.
 *
 * Build: cc -O2 -Wall -o load_client load_client.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 128
#define MSG_LEN 16
#define MAX_EVENTS 256
#define CONNECT_STALL_S 5.0

struct conn {
    int fd;
    int state;     /* 0 connecting, 1 waiting for reply, 2 idle, 3 dead */
    size_t got;    /* reply bytes received for the message in flight */
    char msg[MSG_LEN];
};

static int epfd, echo_mode;
static long errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(struct conn *c)
{
    if (c->state != 3) {
        close(c->fd);  /* also leaves the epoll set */
        c->state = 3;
        errors++;
    }
}

static void send_msg(struct conn *c)
{
    c->got = 0;
    c->state = 1;
    if (write(c->fd, c->msg, MSG_LEN) != MSG_LEN)  /* 16 bytes into an empty buffer */
        fail(c);
}

/* Reads what arrived; returns 1 when the reply to the message in flight is complete. */
static int on_readable(struct conn *c)
{
    char buf[4096];
    size_t want = echo_mode ? MSG_LEN : 5;
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0 || c->state != 1) {
        fail(c);
        return 0;
    }
    const char *expect = echo_mode ? c->msg : "OK!!!";
    if (c->got + (size_t)n > want || memcmp(buf, expect + c->got, (size_t)n) != 0) {
        fail(c);
        return 0;
    }
    c->got += (size_t)n;
    if (c->got < want)
        return 0;
    c->state = 2;
    return 1;
}

static int open_conn(struct conn *c, struct sockaddr_in *addr, int i)
{
    char text[32];
    snprintf(text, sizeof text, "msg-%06d-msg-000", i % 1000000);  /* never "exit" */
    memcpy(c->msg, text, MSG_LEN);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)addr, sizeof *addr) < 0 &&
                      errno != EINPROGRESS)) {
        if (c->fd >= 0)
            close(c->fd);
        c->state = 3;
        errors++;
        return 0;
    }
    c->state = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT CLIENTS SECONDS [ok|echo]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    double seconds = atof(argv[3]);
    echo_mode = argc > 4 && strcmp(argv[4], "echo") == 0;
    if (n < 1 || port < 1 || seconds <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    struct conn *conns = calloc((size_t)n, sizeof *conns);
    epfd = epoll_create1(0);
    struct epoll_event events[MAX_EVENTS];

    /* Connect: each connection is served once (first reply) before it counts. */
    int opened = 0, served = 0, in_flight = 0;
    double last = now_s();
    while (served + errors < n && now_s() - last < CONNECT_STALL_S) {
        while (opened < n && in_flight < WINDOW)
            in_flight += open_conn(&conns[opened], &addr, opened), opened++;
        int k = epoll_wait(epfd, events, MAX_EVENTS, 250);
        for (int e = 0; e < k; e++) {
            struct conn *c = events[e].data.ptr;
            if (c->state == 0) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    fail(c), in_flight--;
                    continue;
                }
                int one = 1;
                setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                send_msg(c);
            } else if (on_readable(c)) {
                served++, in_flight--, last = now_s();
            } else if (c->state == 3) {
                in_flight--;
            }
        }
    }

    /* Closed loop for the duration. */
    long requests = 0;
    for (int i = 0; i < n; i++)
        if (conns[i].state == 2)
            send_msg(&conns[i]);
    double t0 = now_s(), end = t0 + seconds, t = t0;
    while ((t = now_s()) < end) {
        int k = epoll_wait(epfd, events, MAX_EVENTS, 100);
        for (int e = 0; e < k; e++) {
            struct conn *c = events[e].data.ptr;
            if (on_readable(c)) {
                requests++;
                send_msg(c);
            }
        }
    }
    printf("{\"clients\": %d, \"served\": %d, \"requests\": %ld, \"seconds\": %.3f, "
           "\"requests_per_s\": %.1f, \"errors\": %ld}\n",
           n, served, requests, t - t0, (double)requests / (t - t0), errors);
    for (int i = 0; i < n; i++)
        if (conns[i].state != 3)
            close(conns[i].fd);
    return errors ? 1 : 0;
}
