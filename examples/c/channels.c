/*
 * channels: one message through every kind of channel holdcheck names,
 * each from a child process to a thread of the parent, so that both ends of
 * each channel are seen from two processes.
 *
 * For every channel KIND the child sending is named "send-KIND" and the
 * parent's receiving thread "recv-KIND". Some kinds run twice (suffixes -a
 * and -b): two channels of one kind must stay two.
 */
#include "common.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static char dir[64];

struct recv_job {
    int fd;
    int dgram;  /* recvfrom on a datagram socket, else read */
    int listen; /* fd is listening: accept a connection, then read it */
};

static void *receiver(void *arg) {
    struct recv_job *j = arg;
    char buf[64];
    if (j->listen) {
        int c = accept(j->fd, NULL, NULL);
        if (c < 0)
            die("accept");
        ssize_t n = read(c, buf, sizeof buf);
        close(c);
        if (n <= 0)
            die("read");
        return NULL;
    }
    ssize_t n = j->dgram ? recvfrom(j->fd, buf, sizeof buf, 0, NULL, NULL) : read(j->fd, buf, sizeof buf);
    if (n <= 0)
        die("receive");
    return NULL;
}

/* Runs `send_fn(arg)` in a child named send-NAME while a thread named
 * recv-NAME receives from `fd`. */
static void exchange(const char *name, int fd, int dgram, void (*send_fn)(void *), void *arg) {
    char tname[16];
    snprintf(tname, sizeof tname, "recv-%s", name);
    struct recv_job job = {fd, dgram, 0};
    pthread_t t = spawn(tname, receiver, &job);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        snprintf(tname, sizeof tname, "send-%s", name);
        pthread_setname_np(pthread_self(), tname);
        send_fn(arg);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    pthread_join(t, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "channels: %s: the sender failed\n", name);
        exit(1);
    }
}

static void write_to(void *arg) {
    if (write(*(int *)arg, "hello", 5) != 5)
        die("write");
}

static void send_to(void *arg) {
    if (send(*(int *)arg, "hello", 5, 0) != 5)
        die("send");
}

struct dest {
    int family, type, protocol;
    struct sockaddr_storage addr;
    socklen_t len;
};

/* A new socket sends one datagram to the address. */
static void sendto_dest(void *arg) {
    struct dest *d = arg;
    int fd = socket(d->family, d->type, d->protocol);
    if (fd < 0 || sendto(fd, "hello", 5, 0, (struct sockaddr *)&d->addr, d->len) != 5)
        die("sendto");
}

/* Waits for a byte on a non-blocking pipe (which holdcheck ignores). */
static void await_byte(int fd) {
    char c;
    while (read(fd, &c, 1) != 1)
        usleep(1000);
}

/* A new socket connects to the address and sends; returns the socket. */
static int connect_send(struct dest *d) {
    int fd = socket(d->family, d->type, d->protocol);
    if (fd < 0 || connect(fd, (struct sockaddr *)&d->addr, d->len) < 0)
        die("connect");
    send_to(&fd);
    return fd;
}

static void socketpair_kind(const char *name, int type) {
    int sv[2];
    if (socketpair(AF_UNIX, type, 0, sv) < 0)
        die("socketpair");
    exchange(name, sv[0], type == SOCK_DGRAM, send_to, &sv[1]);
    close(sv[0]);
    close(sv[1]);
}

static void pipe_kind(const char *name) {
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    exchange(name, p[0], 0, write_to, &p[1]);
    close(p[0]);
    close(p[1]);
}

static void fifo_kind(const char *name) {
    char path[128];
    snprintf(path, sizeof path, "%s/fifo-%s", dir, name);
    if (mkfifo(path, 0600) < 0)
        die("mkfifo");
    int r = open(path, O_RDWR); /* never blocks, keeps a writer */
    int w = open(path, O_WRONLY);
    if (r < 0 || w < 0)
        die("open fifo");
    exchange(name, r, 0, write_to, &w);
    close(r);
    close(w);
}

/* A listening socket; the child connects and sends, a thread of ours
 * accepts and reads. With `send_first`, the child sends before the
 * connection is accepted (the receiving socket has no inode yet). */
static void stream_kind(const char *name, struct dest *d, int send_first) {
    int sync[2], done[2];
    if (pipe2(sync, O_NONBLOCK) < 0 || pipe2(done, O_NONBLOCK) < 0)
        die("pipe2");
    int l = socket(d->family, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&d->addr, d->len) < 0 || listen(l, 1) < 0)
        die("listen");
    d->len = sizeof d->addr;
    getsockname(l, (struct sockaddr *)&d->addr, &d->len);
    d->type = SOCK_STREAM;
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        char tname[16];
        snprintf(tname, sizeof tname, "send-%s", name);
        pthread_setname_np(pthread_self(), tname);
        int fd = connect_send(d);
        if (write(sync[1], "s", 1) != 1)
            die("write");
        /* Connected until the parent has read (as a client awaiting a
         * reply would be). */
        await_byte(done[0]);
        close(fd);
        _exit(0);
    }
    if (send_first)
        await_byte(sync[0]);
    char tname[16];
    snprintf(tname, sizeof tname, "recv-%s", name);
    struct recv_job job = {l, 0, 1};
    pthread_join(spawn(tname, receiver, &job), NULL);
    if (write(done[1], "d", 1) != 1)
        die("write");
    waitpid(pid, NULL, 0);
    close(l);
    close(sync[0]);
    close(sync[1]);
    close(done[0]);
    close(done[1]);
}

static void unix_stream_kind(const char *name, int abstract, int send_first) {
    struct dest d = {.family = AF_UNIX};
    struct sockaddr_un *a = (struct sockaddr_un *)&d.addr;
    a->sun_family = AF_UNIX;
    if (abstract) {
        snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "holdcheck-channels-%d-%s", (int)getpid(), name);
        d.len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1);
    } else {
        snprintf(a->sun_path, sizeof a->sun_path, "%s/sock-%s", dir, name);
        d.len = sizeof *a;
    }
    stream_kind(name, &d, send_first);
}

static void tcp_kind(const char *name) {
    struct dest d = {.family = AF_INET};
    struct sockaddr_in *a = (struct sockaddr_in *)&d.addr;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d.len = sizeof *a;
    stream_kind(name, &d, 0);
}

/* A bound datagram socket of ours; the child sends to its address. */
static void dgram_kind(const char *name, int family, int protocol, struct dest *d) {
    int fd = socket(family, family == AF_NETLINK ? SOCK_RAW : SOCK_DGRAM, protocol);
    if (fd < 0 || bind(fd, (struct sockaddr *)&d->addr, d->len) < 0)
        die("bind");
    d->len = sizeof d->addr;
    getsockname(fd, (struct sockaddr *)&d->addr, &d->len);
    d->family = family;
    d->type = family == AF_NETLINK ? SOCK_RAW : SOCK_DGRAM;
    d->protocol = protocol;
    exchange(name, fd, 1, sendto_dest, d);
    close(fd);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/holdcheck-channels-%d", (int)getpid());
    if (mkdir(dir, 0700) < 0)
        die("mkdir");

    socketpair_kind("spstream-a", SOCK_STREAM);
    socketpair_kind("spstream-b", SOCK_STREAM);
    socketpair_kind("spdgram", SOCK_DGRAM);
    unix_stream_kind("unixpath", 0, 0);
    unix_stream_kind("abstract", 1, 0);
    unix_stream_kind("early", 0, 1); /* sent before accept */
    pipe_kind("pipe-a");
    pipe_kind("pipe-b");
    fifo_kind("fifo");
    tcp_kind("tcp-a");
    tcp_kind("tcp-b");

    struct dest d;
    memset(&d, 0, sizeof d);
    struct sockaddr_un *un = (struct sockaddr_un *)&d.addr;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s/dgram", dir);
    d.len = sizeof *un;
    dgram_kind("unixdgram", AF_UNIX, 0, &d);

    memset(&d, 0, sizeof d);
    struct sockaddr_in *in = (struct sockaddr_in *)&d.addr;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d.len = sizeof *in;
    dgram_kind("udp", AF_INET, 0, &d);

    memset(&d, 0, sizeof d);
    struct sockaddr_nl *nl = (struct sockaddr_nl *)&d.addr;
    nl->nl_family = AF_NETLINK;
    d.len = sizeof *nl;
    dgram_kind("netlink", AF_NETLINK, NETLINK_USERSOCK, &d);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    printf("channels: done\n");
    return 0;
}
