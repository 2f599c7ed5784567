/*
 * exit_no_close.c - DEFECT: exit is answered but the connection stays open.
 *
 * Thread per connection like ok_thread.c, but the exit message gets its
 * OK!!! and the session simply goes on, ending only at the client's EOF.
 */
#include "common.h"

static void serve_ok_ignoring_exit(int fd)
{
    char buf[MSG_MAX];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);  /* WAITS: the session goes on */
        if (n <= 0)
            return;
        if (write_all(fd, REPLY, REPLY_LEN) < 0)
            return;
        /* DEFECT: no "if (is_exit(buf, n)) return;" */
    }
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    if (s->proto == PROTO_ECHO)
        serve_echo(s->fd);
    else
        serve_ok_ignoring_exit(s->fd);
    close(s->fd);
    free(s);
    return NULL;
}

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
        start_detached(session_thread, new_session(cfd, proto));
    }
}
