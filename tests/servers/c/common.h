/*
 * common.h - the correct building blocks shared by every zoo server.
 *
 * Each zoo server is one .c file that includes this header and differs from a
 * correct server in exactly one place (stated at the top of that file). The
 * helpers here are therefore all correct: EINTR is retried, partial writes are
 * completed, and the SIGCHLD handler reaps in a loop.
 *
 * Invocation of every server: BINARY PORT [ok|echo]
 */
#ifndef ZOO_COMMON_H
#define ZOO_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKLOG 128
#define MSG_MAX 1024      /* ok profile: one read of up to 1024 bytes per message */
#define ECHO_CHUNK 65536  /* echo profile: read size */
#define REPLY "OK!!!"
#define REPLY_LEN 5

enum protocol { PROTO_OK, PROTO_ECHO };

static inline void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s PORT [ok|echo]\n", argv0);
    exit(2);
}

/* Parses "PORT [ok|echo]"; returns the protocol and stores the port. */
static inline enum protocol parse_args(int argc, char **argv, int *port)
{
    if (argc < 2 || argc > 3)
        usage(argv[0]);
    char *end;
    long p = strtol(argv[1], &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        usage(argv[0]);
    *port = (int)p;
    if (argc == 2 || strcmp(argv[2], "ok") == 0)
        return PROTO_OK;
    if (strcmp(argv[2], "echo") == 0)
        return PROTO_ECHO;
    usage(argv[0]);
    return PROTO_OK;
}

static inline void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Without this a write to a peer that has gone away kills the whole server. */
static inline void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

/* socket + SO_REUSEADDR + bind(INADDR_ANY:port) + listen(backlog), then the banner. */
static inline int make_listener(int port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(fd, backlog) < 0)
        die("listen");
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        die("getsockname");
    fprintf(stderr, "listening on 0.0.0.0:%d\n", ntohs(addr.sin_port));
    return fd;
}

/* accept() that retries when a signal handler interrupted it. */
static inline int accept_retry(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0 || errno != EINTR)
            return fd;
    }
}

/* read() that retries when a signal handler interrupted it. */
static inline ssize_t read_retry(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Writes all len bytes (write() may write fewer); returns 0, or -1 on error. */
static inline int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "exit", tolerating a trailing "\n" or "\r\n" from line-oriented clients. */
static inline int is_exit(const char *buf, ssize_t n)
{
    return (n == 4 && memcmp(buf, "exit", 4) == 0) ||
           (n == 5 && memcmp(buf, "exit\n", 5) == 0) ||
           (n == 6 && memcmp(buf, "exit\r\n", 6) == 0);
}

/* ok profile: one read per message, reply OK!!!, end on exit, EOF or error. */
static inline void serve_ok(int fd)
{
    char buf[MSG_MAX];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (write_all(fd, REPLY, REPLY_LEN) < 0)
            return;
        if (is_exit(buf, n))
            return;
    }
}

/* echo profile: write back every byte in order until EOF or error. */
static inline void serve_echo(int fd)
{
    char buf[ECHO_CHUNK];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (write_all(fd, buf, (size_t)n) < 0)
            return;
    }
}

/*
 * HTTP/1.0 the way CS:APP's Tiny web server speaks it: read the request line
 * and the headers up to the blank line, send one response (200, with its
 * Content-Length), and the caller closes the connection. One request per
 * connection is HTTP/1.0's rule without keep-alive (RFC 1945 section 1.3).
 */
#define TINY_BODY "<html><body>Tiny</body></html>\n"
#define TINY_HEAD_MAX 8192

static inline void serve_tiny(int fd)
{
    char buf[TINY_HEAD_MAX + 1];
    size_t got = 0;
    for (;;) {
        ssize_t n = read_retry(fd, buf + got, TINY_HEAD_MAX - got);
        if (n <= 0)
            return;  /* the client left before its request was whole */
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            break;
        if (got == TINY_HEAD_MAX)
            return;  /* a request head this long is not answered */
    }
    char head[256];
    int len = snprintf(head, sizeof head,
                       "HTTP/1.0 200 OK\r\nServer: Tiny Web Server\r\n"
                       "Content-Type: text/html\r\nContent-Length: %zu\r\n\r\n",
                       strlen(TINY_BODY));
    if (write_all(fd, head, (size_t)len) == 0)
        write_all(fd, TINY_BODY, strlen(TINY_BODY));
}

/* One whole session on a connected socket (the caller closes fd). */
static inline void serve(int fd, enum protocol proto)
{
    if (proto == PROTO_ECHO)
        serve_echo(fd);
    else
        serve_ok(fd);
}

/*
 * fork() for a session child. The child also asks for SIGTERM when its parent
 * dies: the parent keeps SIGTERM's default action, and this way stopping the
 * server with SIGTERM also ends the sessions in progress (no orphans left).
 */
static inline pid_t fork_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)  /* the parent died before prctl() */
            _exit(0);
    }
    return pid;
}

/* SIGCHLD handler: one signal may stand for many exited children, so loop. */
static inline void reap_children(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

/* Installs handler for SIGCHLD with the given sa_flags. */
static inline void on_sigchld(void (*handler)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = flags;
    if (sigaction(SIGCHLD, &sa, NULL) < 0)
        die("sigaction");
}

/* Thread-per-connection servers pass the connection to the thread in a heap cell. */
struct session {
    int fd;
    enum protocol proto;
};

static inline struct session *new_session(int fd, enum protocol proto)
{
    struct session *s = malloc(sizeof *s);
    if (s == NULL)
        die("malloc");
    s->fd = fd;
    s->proto = proto;
    return s;
}

/* pthread_create + detach, so the thread's resources go when it returns. */
static inline void start_detached(void *(*fn)(void *), void *arg)
{
    pthread_t tid;
    int err = pthread_create(&tid, NULL, fn, arg);
    if (err != 0) {
        errno = err;
        die("pthread_create");
    }
    pthread_detach(tid);
}

#endif
