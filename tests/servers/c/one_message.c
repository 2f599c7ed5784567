/*
 * one_message.c - DEFECT: only the first message of a connection is answered.
 *
 * Thread per connection like ok_thread.c; the first message is handled like
 * the correct loop does (OK!!!, and the session ends if it was exit), but
 * after it the thread never replies again: it reads and discards everything
 * until the client's EOF (or an error), then closes.
 */
#include "common.h"

static void serve_ok_once(int fd)
{
    char buf[MSG_MAX];
    ssize_t n = read_retry(fd, buf, sizeof buf);
    if (n <= 0)
        return;
    if (write_all(fd, REPLY, REPLY_LEN) < 0 || is_exit(buf, n))
        return;
    /* DEFECT: no loop back to the reply; the rest is read and ignored */
    while (read_retry(fd, buf, sizeof buf) > 0)
        ;
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    if (s->proto == PROTO_ECHO)
        serve_echo(s->fd);
    else
        serve_ok_once(s->fd);
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
