/* Small helpers shared by the holdcheck example programs. */
#ifndef HOLDCHECK_EXAMPLES_COMMON_H
#define HOLDCHECK_EXAMPLES_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(2);
}

static inline void check(int rc, const char *what) {
    if (rc != 0) {
        errno = rc;
        die(what);
    }
}

/* The CLOCK_REALTIME deadline `ms` milliseconds from now, as the timed
 * pthread calls take it. */
static inline struct timespec deadline_in_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += ms % 1000 * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

struct named_start {
    const char *name;
    void *(*fn)(void *);
    void *arg;
};

static inline void *named_trampoline(void *p) {
    struct named_start s = *(struct named_start *)p;
    free(p);
    /* Named before it does anything, however late its creator gets to it. */
    pthread_setname_np(pthread_self(), s.name);
    return s.fn(s.arg);
}

/* Starts a named thread. */
static inline pthread_t spawn(const char *name, void *(*fn)(void *), void *arg) {
    struct named_start *s = malloc(sizeof *s);
    if (!s)
        die("malloc");
    *s = (struct named_start){name, fn, arg};
    pthread_t t;
    check(pthread_create(&t, NULL, named_trampoline, s), "pthread_create");
    return t;
}

/* A NETLINK_USERSOCK socket bound to a port the kernel picks. */
static inline int nl_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_USERSOCK);
    if (fd < 0)
        die("socket(AF_NETLINK)");
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0)
        die("bind");
    return fd;
}

/* The port id a netlink socket is bound to. */
static inline unsigned nl_port(int fd) {
    struct sockaddr_nl me;
    socklen_t len = sizeof me;
    if (getsockname(fd, (struct sockaddr *)&me, &len) < 0)
        die("getsockname");
    return me.nl_pid;
}

/* Threads that run at the same time but take turns, so an example shows an
 * inversion without hanging: turn_wait(i) returns on turn i, turn_pass()
 * hands on the next. Nothing the shim sees orders them (an atomic, not a
 * lock or a join), as in a real program whose timing happened to keep
 * them apart. */
static inline atomic_int *turn_counter(void) {
    static atomic_int turn;
    return &turn;
}

static inline void turn_wait(int i) {
    while (atomic_load(turn_counter()) != i)
        sched_yield();
}

static inline void turn_pass(void) { atomic_fetch_add(turn_counter(), 1); }

static inline int has_flag(int argc, char **argv, const char *flag) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}
#endif
