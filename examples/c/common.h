/* Small helpers shared by the holdcheck example programs. */
#ifndef HOLDCHECK_EXAMPLES_COMMON_H
#define HOLDCHECK_EXAMPLES_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Starts a named thread. */
static inline pthread_t spawn(const char *name, void *(*fn)(void *), void *arg) {
    pthread_t t;
    check(pthread_create(&t, NULL, fn, arg), "pthread_create");
    pthread_setname_np(t, name);
    return t;
}

static inline int has_flag(int argc, char **argv, const char *flag) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}
#endif
