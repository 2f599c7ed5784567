/*
 * tut_thread_tutorial.c - the course tutorial's first thread-per-connection
 * server, as students hand it in. Its thread model is fine; it has three
 * defects, which interact:
 *
 *  1. DEFECT: recv()'s result is never checked. After the client's EOF,
 *     recv() returns 0 at once, the thread sends "OK!!!" again and loops;
 *     once the client has gone, the second send() raises SIGPIPE, which is
 *     neither ignored nor avoided (MSG_NOSIGNAL), and kills the whole process.
 *  2. DEFECT: the connected socket is never closed (descriptor leak).
 *  3. DEFECT: every thread receives into and sends from the same global
 *     buffers, so one thread can clear the message another is about to read
 *     ("exit" is then missed, and defect 1 follows when that client leaves).
 *
 * Build: cc -O1 -Wall -pthread -DPORT=9822 -o tut_thread_tutorial tut_thread_tutorial.c
 */
#include <netinet/in.h>
#include <pthread.h>
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

char recvbuf[BUFSIZE];  /* DEFECT: shared by every thread */
char sendbuf[BUFSIZE];  /* DEFECT: shared by every thread */

void *handler(void *arg)
{
    int connfd = *(int *)arg;
    free(arg);
    for (;;) {
        memset(recvbuf, 0, BUFSIZE);
        recv(connfd, recvbuf, BUFSIZE, 0);               /* DEFECT: 0 and -1 not checked */
        strcpy(sendbuf, "OK!!!");
        send(connfd, sendbuf, strlen(sendbuf), 0);        /* DEFECT: SIGPIPE kills us */
        if (strncmp(recvbuf, "exit", 4) == 0)
            break;
    }
    return NULL;                                          /* DEFECT: connfd never closed */
}

int main(void)
{
    int listenfd = socket(AF_INET, SOCK_STREAM, 0);
    if (listenfd < 0) {
        perror("socket");
        exit(1);
    }
    int opt = 1;
    setsockopt(listenfd, SOL_SOCKET, SO_REUSEADDR, &opt, sizeof opt);
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
            perror("accept");
            continue;
        }
        int *arg = malloc(sizeof *arg);
        *arg = connfd;
        pthread_t tid;
        pthread_create(&tid, NULL, handler, arg);
        pthread_detach(tid);
    }
}
