/*
 * ok_prefork.c - correct server, a fixed pool of pre-forked workers.
 *
 * Design: the parent opens the listening socket and forks WORKERS workers that
 * all block in accept() on that shared socket (the kernel hands each new
 * connection to one of them), so workers hold the listener on purpose. A
 * worker serves each accepted connection in a detached thread, so a slow
 * client never blocks the others. The parent only waits for its workers,
 * replaces one that dies, and forwards SIGTERM to them before exiting.
 */
#include "common.h"

#define WORKERS 4

static pid_t workers[WORKERS];
static volatile sig_atomic_t stopping;

static void forward_sigterm(int sig)
{
    int saved = errno;
    stopping = 1;
    for (int i = 0; i < WORKERS; i++)
        if (workers[i] > 0)
            kill(workers[i], sig);
    errno = saved;
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    serve(s->fd, s->proto);
    close(s->fd);
    free(s);
    return NULL;
}

static void worker(int lfd, enum protocol proto)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        start_detached(session_thread, new_session(cfd, proto));
    }
}

/* SIGTERM stays blocked from fork() until workers[] records the new pid. */
static void spawn(int slot, int lfd, enum protocol proto)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        worker(lfd, proto);
    workers[slot] = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_sigterm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0)
        die("sigaction");
    int lfd = make_listener(port, BACKLOG);
    for (int i = 0; i < WORKERS; i++)
        spawn(i, lfd, proto);
    for (;;) {
        pid_t pid = waitpid(-1, NULL, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                return 0;
            die("waitpid");
        }
        for (int i = 0; i < WORKERS; i++) {
            if (workers[i] != pid)
                continue;
            workers[i] = 0;
            if (!stopping)
                spawn(i, lfd, proto);
        }
    }
}
