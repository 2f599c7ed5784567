/*
 * no_exit_reply.c - DEFECT: exit closes the connection without replying.
 *
 * Thread per connection like ok_thread.c; the session loop is the correct
 * one except that it checks for exit before replying, so the exit message
 * ends the session (the connection is closed) with no OK!!! sent first.
 */
#include "common.h"

static void serve_ok_silent_exit(int fd)
{
    char buf[MSG_MAX];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (is_exit(buf, n))  /* DEFECT: returns before the reply is written */
            return;
        if (write_all(fd, REPLY, REPLY_LEN) < 0)
            return;
    }
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    if (s->proto == PROTO_ECHO)
        serve_echo(s->fd);
    else
        serve_ok_silent_exit(s->fd);
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
