/*
 * sigpipe_eof.c - DEFECT: the end of the stream is ignored and SIGPIPE is left fatal.
 *
 * Thread per connection like ok_thread.c, but the ok session loop never checks
 * what read() returned: at EOF (0) or after a reset (-1) it still replies
 * OK!!! and reads again, so only the exit message ends a session. SIGPIPE
 * keeps its default action, so the first write to the departed peer kills
 * the whole server. (In the echo profile the loop is the correct one; only
 * SIGPIPE is fatal there.)
 */
#include "common.h"

static void serve_ok_ignoring_eof(int fd)
{
    char buf[MSG_MAX];
    for (;;) {  /* SPINS here at EOF, replying to 0 bytes (the line a stack names) */
        ssize_t n = read_retry(fd, buf, sizeof buf);
        /* DEFECT: no "if (n <= 0) return;", and write errors go unnoticed too */
        write_all(fd, REPLY, REPLY_LEN);
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
        serve_ok_ignoring_eof(s->fd);
    close(s->fd);
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    /* DEFECT: no ignore_sigpipe() */
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
