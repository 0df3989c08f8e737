/*
 * libctor: a library whose constructor starts a thread and waits for it,
 * as some plugins do (host dlopen). The thread's calls are the shim's first
 * calls of those functions; they must not need the loader's lock, which the
 * constructor holds while it waits.
 */
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

static int done;

static void *starter(void *arg) {
    (void)arg;
    static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    pthread_rwlock_rdlock(&rw);
    pthread_mutex_lock(&m);
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    pthread_rwlock_unlock(&rw);
    int p[2];
    if (pipe(p) == 0) {
        char x = 1;
        write(p[1], &x, 1);
        struct pollfd pf = {p[0], POLLIN, 0};
        poll(&pf, 1, 1000);
        read(p[0], &x, 1);
        close(p[0]);
        close(p[1]);
    }
    done = 1;
    return NULL;
}

__attribute__((constructor)) static void ctor(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, starter, NULL) == 0)
        pthread_join(t, NULL);
}

int ctor_done(void) { return done; }
