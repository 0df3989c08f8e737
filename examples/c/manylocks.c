/*
 * manylocks: programs with many more lock instances than lock classes, the
 * shape whose trace must grow with classes, not instances (issue 17).
 *
 *   manylocks --objects N   two threads, each N times: an object with its
 *                           own mutex is allocated, initialised, locked
 *                           under an outer lock, destroyed and freed
 *   manylocks --stress N    four threads, each N steps over 16384 rwlocks
 *                           in a static array: lock a random one above
 *                           every lock it holds (at most 10, so always in
 *                           ascending order), unlock a random held one,
 *                           or destroy a random unused one (it is
 *                           initialised again on its next use): the shape
 *                           of ThreadSanitizer's deadlock detector stress
 *                           test; no deadlock is possible
 *
 * Each prints "<mode> <ns per step>".
 */
#include "common.h"
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* --objects */

struct object {
    pthread_mutex_t m;
    long value;
};

static pthread_mutex_t outer = PTHREAD_MUTEX_INITIALIZER;
static long total;

static NOINLINE struct object *object_new(void) {
    struct object *o = malloc(sizeof *o);
    if (!o)
        die("malloc");
    check(pthread_mutex_init(&o->m, NULL), "pthread_mutex_init");
    o->value = 1;
    return o;
}

static NOINLINE void object_free(struct object *o) {
    check(pthread_mutex_destroy(&o->m), "pthread_mutex_destroy");
    free(o);
}

static void *objects(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        struct object *o = object_new();
        pthread_mutex_lock(&outer);
        pthread_mutex_lock(&o->m);
        total += o->value;
        pthread_mutex_unlock(&o->m);
        pthread_mutex_unlock(&outer);
        object_free(o);
    }
    return NULL;
}

/* --stress */

enum { MUTEXES = 16 << 10, MAX_HELD = 10, NOT_INITED = -1, BUSY = -2 };

struct slot {
    _Atomic int state; /* NOT_INITED, BUSY, or the number of users */
    pthread_rwlock_t rw;
};

static struct slot slots[MUTEXES];

/* A reference to slot `id`, initialising its lock if it has none. */
static void acquire_ref(struct slot *s) {
    for (;;) {
        int old = atomic_load(&s->state);
        if (old == BUSY) {
            sched_yield();
            continue;
        }
        int next = old == NOT_INITED ? BUSY : old + 1;
        if (atomic_compare_exchange_weak(&s->state, &old, next)) {
            if (old == NOT_INITED) {
                check(pthread_rwlock_init(&s->rw, NULL), "pthread_rwlock_init");
                atomic_store(&s->state, 1);
            }
            return;
        }
    }
}

static void *stress(void *arg) {
    unsigned rnd = (unsigned)(long)arg;
    long n = (long)arg >> 8;
    int held[MAX_HELD];
    int nheld = 0;
    for (long i = 0; i < n; i++) {
        int what = rand_r(&rnd) % 10;
        if (what < 4 && nheld < MAX_HELD) {
            int top = -1;
            for (int k = 0; k < nheld; k++)
                if (held[k] > top)
                    top = held[k];
            if (top == MUTEXES - 1)
                continue;
            int id = top + 1 + rand_r(&rnd) % (MUTEXES - top - 1);
            struct slot *s = &slots[id];
            acquire_ref(s);
            int failed = 0;
            switch (rand_r(&rnd) % 4) {
            case 0:
                check(pthread_rwlock_wrlock(&s->rw), "pthread_rwlock_wrlock");
                break;
            case 1:
                check(pthread_rwlock_rdlock(&s->rw), "pthread_rwlock_rdlock");
                break;
            case 2:
                failed = pthread_rwlock_trywrlock(&s->rw) != 0;
                break;
            default:
                failed = pthread_rwlock_tryrdlock(&s->rw) != 0;
                break;
            }
            if (failed)
                atomic_fetch_sub(&s->state, 1);
            else
                held[nheld++] = id;
        } else if (what < 9 && nheld > 0) {
            int pos = rand_r(&rnd) % nheld;
            struct slot *s = &slots[held[pos]];
            held[pos] = held[--nheld];
            check(pthread_rwlock_unlock(&s->rw), "pthread_rwlock_unlock");
            atomic_fetch_sub(&s->state, 1);
        } else {
            struct slot *s = &slots[rand_r(&rnd) % MUTEXES];
            int idle = 0;
            if (atomic_compare_exchange_strong(&s->state, &idle, BUSY)) {
                check(pthread_rwlock_destroy(&s->rw), "pthread_rwlock_destroy");
                atomic_store(&s->state, NOT_INITED);
            }
        }
    }
    while (nheld > 0) {
        struct slot *s = &slots[held[--nheld]];
        check(pthread_rwlock_unlock(&s->rw), "pthread_rwlock_unlock");
        atomic_fetch_sub(&s->state, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: manylocks --objects N | --stress N\n");
        return 2;
    }
    long n = atol(argv[2]);
    double t0 = now_ns();
    if (strcmp(argv[1], "--objects") == 0) {
        pthread_t a = spawn("objects-a", objects, (void *)n);
        pthread_t b = spawn("objects-b", objects, (void *)n);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        printf("objects %.2f\n", (now_ns() - t0) / n);
    } else if (strcmp(argv[1], "--stress") == 0) {
        for (int i = 0; i < MUTEXES; i++)
            atomic_init(&slots[i].state, NOT_INITED);
        pthread_t t[4];
        for (long i = 0; i < 4; i++)
            t[i] = spawn("stress", stress, (void *)(n << 8 | (i * 37 + 11)));
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        printf("stress %.2f\n", (now_ns() - t0) / n);
    } else {
        fprintf(stderr, "usage: manylocks --objects N | --stress N\n");
        return 2;
    }
    return 0;
}
