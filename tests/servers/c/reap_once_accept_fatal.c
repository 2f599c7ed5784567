/*
 * reap_once_accept_fatal.c - two DEFECTs of a first fork server, together:
 * the SIGCHLD handler reaps one child per signal (as reap_once.c), and it is
 * installed without SA_RESTART while an accept() that fails is fatal (as
 * accept_eintr_fatal.c). The server exits at the first SIGCHLD that interrupts
 * accept(), so it never lives long enough to show the zombies its handler
 * leaves when many children exit together: the kit must not pass ZOMB-2 on it.
 */
#include "common.h"

static void reap_one_child(int sig)
{
    (void)sig;
    int saved = errno;
    waitpid(-1, NULL, WNOHANG);  /* DEFECT: no loop */
    errno = saved;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    on_sigchld(reap_one_child, SA_NOCLDSTOP);  /* DEFECT: no SA_RESTART ... */
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (cfd < 0) {  /* ... and EINTR is not retried */
            perror("accept");
            exit(1);
        }
        pid_t pid = fork_child();
        if (pid < 0) {
            perror("fork");
        } else if (pid == 0) {
            close(lfd);
            serve(cfd, proto);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
