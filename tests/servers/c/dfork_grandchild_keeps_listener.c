/*
 * dfork_grandchild_keeps_listener.c - DEFECT: the serving grandchild keeps the
 * listening socket.
 *
 * As dfork.c, but the grandchild never closes the listening socket it
 * inherited through two fork()s.
 */
#include "common.h"

/* SIGTERM: the grandchildren are no children of ours, so signal the whole
 * process group (they stay in it), ourselves included, with the default action. */
static void stop_group(int sig)
{
    signal(sig, SIG_DFL);
    kill(0, sig);
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    signal(SIGTERM, stop_group);
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
        } else if (pid == 0) {
            /* The child: fork the grandchild that serves, and exit at once, so the
             * grandchild is adopted by init (or a subreaper) and reaped there. */
            signal(SIGTERM, SIG_DFL);
            pid_t grandchild = fork();
            if (grandchild == 0) {
                /* DEFECT: no close(lfd) here. */
                serve(cfd, proto);
                close(cfd);
                _exit(0);
            }
            _exit(grandchild < 0);
        }
        close(cfd);
        /* The child exits at once: wait for it here, so it never stays a zombie. */
        while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
}
