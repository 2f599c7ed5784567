/*
 * shared_conn.c - DEFECT: replies are written to a global "current connection".
 *
 * Thread per connection like ok_thread.c, but the accepted descriptor is also
 * stored in ONE global variable, g_conn, and the session thread, which reads
 * from its own descriptor, writes every reply to g_conn. With one client at a
 * time that is the client's own connection; with several connected at once it
 * is the most recently accepted one, so replies go to the wrong client.
 */
#include "common.h"

static int g_conn;  /* DEFECT: one variable for every session */

static void serve_ok_shared(int fd)
{
    char buf[MSG_MAX];
    for (;;) {
        ssize_t n = read_retry(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        if (write_all(g_conn, REPLY, REPLY_LEN) < 0)  /* DEFECT: g_conn, not fd */
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
        serve_ok_shared(s->fd);
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
        g_conn = cfd;
        start_detached(session_thread, new_session(cfd, proto));
    }
}
