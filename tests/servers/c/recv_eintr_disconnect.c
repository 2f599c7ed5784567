/*
 * recv_eintr_disconnect.c - DEFECT: a read() interrupted by a signal ends the session.
 *
 * Fork per connection like ok_fork.c. The SIGCHLD handler (a correct reaping
 * loop) is installed without SA_RESTART and the parent retries accept() on
 * EINTR correctly; but the child, which inherits the handler, treats read()
 * returning -1 for any errno, EINTR included, as a disconnect. So any SIGCHLD
 * delivered to a child in the middle of a session hangs up on the client.
 */
#include "common.h"

/* serve_ok()/serve_echo() with read() instead of read_retry(). */
static void serve_no_retry(int fd, enum protocol proto)
{
    char buf[ECHO_CHUNK];
    size_t want = proto == PROTO_ECHO ? sizeof buf : MSG_MAX;
    for (;;) {
        ssize_t n = read(fd, buf, want);
        if (n <= 0)  /* DEFECT: -1 with errno == EINTR is not a disconnect */
            return;
        if (proto == PROTO_ECHO) {
            if (write_all(fd, buf, (size_t)n) < 0)
                return;
            continue;
        }
        if (write_all(fd, REPLY, REPLY_LEN) < 0 || is_exit(buf, n))
            return;
    }
}

int main(int argc, char **argv)
{
    int port;
    enum protocol proto = parse_args(argc, argv, &port);
    ignore_sigpipe();
    on_sigchld(reap_children, SA_NOCLDSTOP);  /* no SA_RESTART: every caller must retry */
    int lfd = make_listener(port, BACKLOG);
    for (;;) {
        int cfd = accept_retry(lfd);
        if (cfd < 0) {
            perror("accept");
            continue;
        }
        pid_t pid = fork_child();
        if (pid < 0) {
            perror("fork");
        } else if (pid == 0) {
            close(lfd);
            serve_no_retry(cfd, proto);
            close(cfd);
            _exit(0);
        }
        close(cfd);
    }
}
