/*
 * wrong_reply.c - DEFECT: replies "OK!!!\n" (6 bytes) instead of "OK!!!".
 *
 * Thread per connection like ok_thread.c; the session loop is the correct
 * one except that every reply, the one to exit included, has a newline.
 */
#include "common.h"

static void serve_ok_newline(int fd)
{
    char buf[MSG_MAX];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (write_all(fd, "OK!!!\n", 6) < 0)  /* DEFECT: one byte too many */
            return;
        if (is_exit(buf, n))
            return;
    }
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    if (s->proto == PROTO_ECHO)
        serve_echo(s->fd);
    else
        serve_ok_newline(s->fd);
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
