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
    } else {
        fprintf(stderr, "usage: mutexkinds kinds|pshared|dlopen|mainexit|exitrace|ctor\n");
        return 2;
    }
    ok(mode);
    return 0;
}
