/*
 * tut_fork_no_reap.c - DEFECT: a fork-per-client server that never reaps its children.
 *
 * The same as tut_fork_reuse.c but without the SIGCHLD handler and without any
 * waitpid(): every child that has served its client stays a zombie until the
 * server exits, and a busy server runs out of process-table slots.
 *
 * Port hard-coded (compile with -DPORT=N), no arguments, "ok" protocol.
 *
 * Build: cc -O1 -Wall -pthread -DPORT=9822 -o tut_fork_no_reap tut_fork_no_reap.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

int main(void)
{
    /* DEFECT: no SIGCHLD handler and no waitpid() anywhere: finished children stay zombies */
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
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
        } else if (pid == 0) {
            /* The child dies with the parent, so stopping the server ends every session. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(0);
            close(listenfd);
            handle_client(connfd);
            close(connfd);
            _exit(0);
        }
        close(connfd);
    }
}
