/*
 * tut_thread_reuse.c - a concurrent server, one thread per client (correct).
 *
 * Written the way a systems-course tutorial writes it: the port is
 * hard-coded (compile with -DPORT=N to change it), the program takes no
 * arguments, and it speaks the "ok" protocol: every message gets "OK!!!",
 * the message "exit" gets "OK!!!" and then the connection is closed.
 *
 * The main thread accepts; for each client it starts a detached thread that
 * serves the client, closes the connection and returns (a detached thread's
 * resources go when it returns; nobody joins it). The connected socket is
 * handed over in its own malloc'd cell, never in a variable the next
 * accept() overwrites. SO_REUSEADDR lets a restarted server bind the port at
 * once, even while old connections on it are in TIME_WAIT.
 *
 * Build: cc -O1 -Wall -pthread -DPORT=9822 -o tut_thread_reuse tut_thread_reuse.c
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef PORT
#define PORT 9822
#endif
#define BACKLOG 128
#define BUFSIZE 1024
#define REPLY "OK!!!"

/* write() may write less than asked, or be interrupted: write it all. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int is_exit(const char *buf, ssize_t n)
{
    return (n == 4 && memcmp(buf, "exit", 4) == 0) ||
           (n == 5 && memcmp(buf, "exit\n", 5) == 0) ||
           (n == 6 && memcmp(buf, "exit\r\n", 6) == 0);
}

/* Serves one client until it sends "exit", closes, or resets. */
static void handle_client(int connfd)
{
    char buf[BUFSIZE];
    for (;;) {
        ssize_t n = read(connfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;          /* a signal interrupted read(): try again */
        if (n <= 0)
            return;            /* 0: the client closed; -1: an error such as a reset */
        if (write_all(connfd, REPLY, strlen(REPLY)) < 0)
            return;
        if (is_exit(buf, n))
            return;
    }
}

static void *client_thread(void *arg)
{
    int connfd = *(int *)arg;
    free(arg);
    handle_client(connfd);
    close(connfd);
    return NULL;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);  /* a write to a closed connection must not kill us */

    int listenfd = socket(AF_INET, SOCK_STREAM, 0);
    if (listenfd < 0) {
        perror("socket");
        exit(1);
    }
    int opt = 1;
    if (setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &opt, sizeof opt) < 0) {
        perror("setsockopt");
        exit(1);
    }
    struct sockaddr_in servaddr;
    memset(&servaddr, 0, sizeof servaddr);
    servaddr.sin_family = AF_INET;
    servaddr.sin_addr.s_addr = htonl(INADDR_ANY);
    servaddr.sin_port = htons(PORT);
    if (bind(listenfd, (struct sockaddr *)&servaddr, sizeof servaddr) < 0) {
        perror("bind");
        exit(1);
    }
    if (listen(listenfd, BACKLOG) < 0) {
        perror("listen");
        exit(1);
    }
    fprintf(stderr, "server listening on port %d\n", PORT);

    for (;;) {
        int connfd = accept(listenfd, NULL, NULL);
        if (connfd < 0) {
            if (errno != EINTR)
                perror("accept");
            continue;          /* EINTR (a signal) included: accept again */
        }
        int *arg = malloc(sizeof *arg);
        if (arg == NULL) {
            perror("malloc");
            close(connfd);
            continue;
        }
        *arg = connfd;
        pthread_t tid;
        int err = pthread_create(&tid, NULL, client_thread, arg);
        if (err != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            free(arg);
            close(connfd);
            continue;
        }
        pthread_detach(tid);
    }
}
