/*
 * poll_wait: threads that wait in poll() on a pipe and a unix socket, and in
 * epoll_wait() on the pipe, for ever. `holdcheck inspect` names what they
 * wait on.
 */
#include "common.h"
#include <poll.h>
#include <sys/epoll.h>

static int pipe_fds[2], sock_fds[2];

static void *poller(void *arg) {
    (void)arg;
    struct pollfd fds[2] = {{.fd = pipe_fds[0], .events = POLLIN}, {.fd = sock_fds[0], .events = POLLIN}};
    poll(fds, 2, -1);
    return NULL;
}

static void *epoller(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = pipe_fds[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, pipe_fds[0], &ev);
    struct epoll_event out;
    epoll_wait(ep, &out, 1, -1);
    return NULL;
}

int main(void) {
    if (pipe(pipe_fds) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fds) < 0)
        die("pipe");
    pthread_t a = spawn("poller", poller, NULL);
    pthread_t b = spawn("epoller", epoller, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}
