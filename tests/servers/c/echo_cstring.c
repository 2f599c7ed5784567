/*
 * echo_cstring.c - DEFECT: echoes each chunk as a C string (strlen, not n).
 *
 * Thread per connection like ok_thread.c; the echo loop is the correct one
 * except that it NUL-terminates what read() returned and writes strlen(buf)
 * bytes instead of n, so a NUL byte in a chunk truncates what is echoed
 * (the NUL and everything after it in that chunk are lost). Meant to be run
 * with the echo profile; the ok profile is served correctly.
 */
#include "common.h"

static void serve_echo_cstring(int fd)
{
    char buf[ECHO_CHUNK + 1];
    for (;;) {
        ssize_t n = read_retry(fd, buf, ECHO_CHUNK);
        if (n <= 0)
            return;
        buf[n] = '\0';
        if (write_all(fd, buf, strlen(buf)) < 0)  /* DEFECT: strlen(buf), not n */
            return;
    }
}

static void *session_thread(void *arg)
{
    struct session *s = arg;
    if (s->proto == PROTO_ECHO)
        serve_echo_cstring(s->fd);
    else
        serve_ok(s->fd);
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
