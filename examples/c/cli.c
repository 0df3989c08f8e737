/*
 * cli: the login path of incident 001. Each login reports itself to warnd
 * by a netlink message to warnd's port; when warnd's queue is full and
 * nobody drains it, every login blocks in netlink_sendmsg.
 *
 *   cli PORT COUNT    send COUNT login messages to netlink port PORT
 */
#include "common.h"

static NOINLINE void report_login(int fd, unsigned port, int seq) {
    char text[64];
    snprintf(text, sizeof text, "login %d", seq);
    struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
    struct iovec iov = {.iov_base = text, .iov_len = sizeof text};
    struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(fd, &msg, 0) < 0)
        die("sendmsg");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: cli PORT COUNT\n");
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
    int count = atoi(argv[2]);
    int fd = nl_socket();
    for (int i = 0; i < count; i++) {
        report_login(fd, port, i);
        usleep(1000);
    }
    return 0;
}
