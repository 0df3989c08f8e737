/*
 * mutexkinds: the process life cycle and mutex kinds the shim must leave
 * exactly as they are. Each mode prints "mutexkinds MODE: ok" when the
 * program saw what it sees natively.
 *
 *   kinds      a recursive mutex taken twice, an error-checking mutex
 *              relocked (EDEADLK), a robust mutex whose owner died
 *              (EOWNERDEAD, then pthread_mutex_consistent)
 *   pshared    a process-shared mutex in shared memory, taken in turn by
 *              a parent and its child
 *   dlopen     a library that takes locks (in its constructor and its
 *              functions) opened, used, closed and opened again
 *   mainexit   main calls pthread_exit while its threads still take locks
 *   exitrace   exit() while threads take locks and block in reads
 *   ctor       locks taken in a constructor, before main
 *   exclusion  a normal mutex and an rwlock still exclude and still wake
 *              their waiters (the shim takes and releases them in place):
 *              counters kept under them by threads that contend, through
 *              a condition variable too, with the locks' first uses made
 *              while the process has one thread
 */
#include "common.h"
#include <dlfcn.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/wait.h>

static void ok(const char *mode) {
    printf("mutexkinds %s: ok\n", mode);
    fflush(stdout);
}

static void expect(int got, int want, const char *what) {
    if (got != want) {
        fprintf(stderr, "%s: got %d (%s), want %d\n", what, got, strerror(got), want);
        exit(1);
    }
}

/* ---- kinds ---- */

static pthread_mutex_t robust;

static void *die_holding(void *arg) {
    (void)arg;
    expect(pthread_mutex_lock(&robust), 0, "robust lock");
    return NULL; /* exits holding it */
}

static int kinds(void) {
    pthread_mutexattr_t a;
    pthread_mutex_t rec, chk;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &a);
    expect(pthread_mutex_lock(&rec), 0, "recursive lock");
    expect(pthread_mutex_lock(&rec), 0, "recursive relock");
    expect(pthread_mutex_unlock(&rec), 0, "recursive unlock");
    expect(pthread_mutex_unlock(&rec), 0, "recursive unlock 2");

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&chk, &a);
    expect(pthread_mutex_lock(&chk), 0, "errorcheck lock");
    expect(pthread_mutex_lock(&chk), EDEADLK, "errorcheck relock");
    expect(pthread_mutex_trylock(&chk), EBUSY, "errorcheck trylock");
    expect(pthread_mutex_unlock(&chk), 0, "errorcheck unlock");
    expect(pthread_mutex_unlock(&chk), EPERM, "errorcheck unlock unowned");

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_t t = spawn("dies-holding", die_holding, NULL);
    pthread_join(t, NULL);
    expect(pthread_mutex_lock(&robust), EOWNERDEAD, "robust lock after owner died");
    expect(pthread_mutex_consistent(&robust), 0, "consistent");
    expect(pthread_mutex_unlock(&robust), 0, "robust unlock");
    expect(pthread_mutex_lock(&robust), 0, "robust lock again");
    expect(pthread_mutex_unlock(&robust), 0, "robust unlock again");
    pthread_mutex_destroy(&rec);
    pthread_mutex_destroy(&chk);
    pthread_mutex_destroy(&robust);
    return 0;
}

/* ---- pshared ---- */

struct shared {
    pthread_mutex_t lock;
    long counter;
};

static int pshared(void) {
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        die("mmap");
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->lock, &a);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&s->lock);
        s->counter++;
        pthread_mutex_unlock(&s->lock);
    }
    if (child == 0)
        _exit(0);
    int st;
    waitpid(child, &st, 0);
    if (s->counter != 40000) {
        fprintf(stderr, "counter %ld\n", s->counter);
        return 1;
    }
    return 0;
}

/* ---- dlopen ---- */

static int dlopen_mode(const char *self) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", self);
    snprintf(path, sizeof path, "%s/liblocky.so", dirname(dir));
    for (int round = 0; round < 3; round++) {
        void *h = dlopen(path, RTLD_NOW);
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        long (*work)(int) = (long (*)(int))dlsym(h, "locky_work");
        /* Each load starts its counter anew (the constructor). */
        if (!work || work(1000) != 1000 || work(1000) != 2000) {
            fprintf(stderr, "locky_work: wrong count\n");
            return 1;
        }
        dlclose(h);
    }
    return 0;
}

/* ---- mainexit, exitrace ---- */

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static long busy_count;

static void *busy(void *arg) {
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&busy_lock);
        busy_count++;
        pthread_mutex_unlock(&busy_lock);
    }
    return NULL;
}

static void *reader(void *arg) {
    int fd = *(int *)arg;
    char c;
    while (read(fd, &c, 1) > 0) {
        pthread_mutex_lock(&busy_lock);
        pthread_mutex_unlock(&busy_lock);
    }
    return NULL;
}

static void say_ok_at_exit(void) {
    ok("mainexit");
}

/* ---- ctor ---- */

static pthread_mutex_t ctor_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ctor_inner = PTHREAD_MUTEX_INITIALIZER;
static int ctor_ran;

__attribute__((constructor(101))) static void early(void) {
    pthread_mutex_lock(&ctor_lock);
    pthread_mutex_lock(&ctor_inner);
    ctor_ran++;
    pthread_mutex_unlock(&ctor_inner);
    pthread_mutex_unlock(&ctor_lock);
}

/* ---- exclusion ---- */

#define EX_THREADS 4
#define EX_ROUNDS 200000

static pthread_mutex_t ex_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t ex_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_cond_t ex_turn = PTHREAD_COND_INITIALIZER;
static volatile long ex_count, ex_a, ex_b, ex_torn, ex_baton;

static void *ex_worker(void *arg) {
    long id = (long)arg;
    for (long i = 0; i < EX_ROUNDS; i++) {
        pthread_mutex_lock(&ex_lock);
        long c = ex_count; /* a lost update if another thread is in here */
        if (i % 64 == 0)
            sched_yield(); /* hold it a while: the others wait on the futex */
        ex_count = c + 1;
        pthread_mutex_unlock(&ex_lock);
        if (i % 4 == 0) {
            pthread_rwlock_wrlock(&ex_rw);
            ex_a++;
            ex_b++;
            pthread_rwlock_unlock(&ex_rw);
        } else {
            pthread_rwlock_rdlock(&ex_rw);
            if (ex_a != ex_b)
                ex_torn++;
            pthread_rwlock_unlock(&ex_rw);
        }
    }
    /* A baton passed round the threads in turn: every wait on the
     * condition variable gives the mutex up and takes it back in glibc. */
    for (int round = 0; round < 2000; round++) {
        pthread_mutex_lock(&ex_lock);
        while (ex_baton % EX_THREADS != id)
            pthread_cond_wait(&ex_turn, &ex_lock);
        ex_baton++;
        pthread_cond_broadcast(&ex_turn);
        pthread_mutex_unlock(&ex_lock);
    }
    return NULL;
}

static int exclusion(void) {
    /* Alone first: glibc's single-thread path. */
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&ex_lock);
        ex_count++;
        pthread_mutex_unlock(&ex_lock);
        pthread_rwlock_rdlock(&ex_rw);
        pthread_rwlock_unlock(&ex_rw);
    }
    pthread_t t[EX_THREADS];
    for (long i = 0; i < EX_THREADS; i++)
        if (pthread_create(&t[i], NULL, ex_worker, (void *)i) != 0)
            die("pthread_create");
    for (int i = 0; i < EX_THREADS; i++)
        pthread_join(t[i], NULL);
    long want = 1000 + (long)EX_THREADS * EX_ROUNDS;
    if (ex_count != want || ex_a != ex_b || ex_torn != 0 || ex_baton != EX_THREADS * 2000) {
        fprintf(stderr, "count %ld (want %ld), a %ld b %ld, torn reads %ld, baton %ld\n", ex_count,
                want, ex_a, ex_b, ex_torn, ex_baton);
        return 1;
    }
    /* Every lock is free again, as glibc sees it. */
    if (pthread_mutex_trylock(&ex_lock) != 0 || pthread_rwlock_trywrlock(&ex_rw) != 0) {
        fprintf(stderr, "a lock left held\n");
        return 1;
    }
    pthread_rwlock_unlock(&ex_rw);
    pthread_mutex_unlock(&ex_lock);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "kinds") == 0) {
        if (kinds())
            return 1;
    } else if (strcmp(mode, "pshared") == 0) {
        if (pshared())
            return 1;
    } else if (strcmp(mode, "dlopen") == 0) {
        if (dlopen_mode(argv[0]))
            return 1;
    } else if (strcmp(mode, "mainexit") == 0) {
        atexit(say_ok_at_exit);
        for (int i = 0; i < 4; i++)
            spawn("busy", busy, (void *)200000L);
        pthread_exit(NULL); /* the process ends with its last thread */
    } else if (strcmp(mode, "exitrace") == 0) {
        int p[2];
        if (pipe(p) < 0)
            die("pipe");
        for (int i = 0; i < 4; i++)
            spawn("busy", busy, (void *)100000000L);
        spawn("reader", reader, &p[0]);
        usleep(50 * 1000);
        ok(mode);
        exit(0); /* with threads in the middle of it all */
    } else if (strcmp(mode, "ctor") == 0) {
        if (ctor_ran != 1)
            return 1;
    } else if (strcmp(mode, "exclusion") == 0) {
        if (exclusion())
            return 1;
    } else {
        fprintf(stderr, "usage: mutexkinds kinds|pshared|dlopen|mainexit|exitrace|ctor|exclusion\n");
        return 2;
    }
    ok(mode);
    return 0;
}
