/*
 * winch_stops.c - DEFECT: SIGWINCH stops the server.
 *
 * Exactly ok_thread.c except for a SIGWINCH handler, installed without
 * SA_RESTART, after which the accept loop closes the listener and exits: a
 * signal whose default action is to do nothing is given a meaning of its own,
 * as Apache httpd's graceful-stop does. A storm of harmless signals (EINTR-2)
 * ends the server.
 */
#include "common.h"

static volatile sig_atomic_t stop_requested;

static void on_winch(int sig)
{
    (void)sig;
    stop_requested = 1;  /* DEFECT: SIGWINCH means "stop" here */
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    serve(s->fd, s->proto);
    close(s->fd);
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGWINCH, &sa, NULL) < 0)
        die("sigaction");
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept(lfd, NULL, NULL);
        if (stop_requested) {
            close(lfd);
            fprintf(stderr, "SIGWINCH: stopping\n");
            exit(0);
        }
        if (cfd < 0) {
            if (errno != EINTR)
                perror("accept");
            continue;
        }
        start_detached(session_thread, new_session(cfd, proto));
    }
}
