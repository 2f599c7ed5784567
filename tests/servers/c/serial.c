/*
 * serial.c - DEFECT: serves one client at a time.
 *
 * An iterative server: no fork, no threads. It accepts a connection and
 * serves it to the end before calling accept() again, so one idle client
 * blocks everybody else.
 */
#include "common.h"

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        serve(cfd, proto);  /* DEFECT: the next accept() waits for this session */
        close(cfd);
    }
}
