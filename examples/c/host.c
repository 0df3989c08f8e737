/*
 * host: healthy programs of the shapes that real daemons have, each of
 * which the shim once harmed (hung, killed, corrupted or grew without
 * bound). Every mode checks its own result and exits 0 only when the
 * program did exactly what it does natively:
 *
 *   alloc       4 threads malloc/free under nested locks (with jemalloc,
 *               tcmalloc or mimalloc preloaded, their locks are inside malloc)
 *   closefds    a daemon that closes every descriptor >= 3, then opens its
 *               own file and a socket: its data must be exactly its own
 *   dlopen      dlopen of a library whose constructor waits for a thread it
 *               started (libctor.so)
 *   forks N     N forks while another thread dlopens and dlcloses; every
 *               child takes nested locks and exits
 *   smallstack  a thread on a 16 KiB stack that uses 8 KiB of it
 *   tasks SECS  a thread per task for SECS seconds, each taking nested locks
 *   privdrop    (as root) a child that drops to uid 65534 and then makes a
 *               lock-order inversion in two threads, one after the other
 *   reload      a library's static mutex taken after a program lock in its
 *               first load, before it in its second (libreload.so, at the
 *               same address): two different locks, no inversion
 *   notrace     a child that cannot create a trace (no descriptor left
 *               under its limit): the report must say it has none
 *   paused      a thread that holds a lock across short reads of a pipe
 *               fed every 50 ms; a child stops the process for 3 s
 *               (SIGSTOP, as Ctrl-Z or a debugger does), then continues it:
 *               nothing stalled
 */
#include "common.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;

static NOINLINE void nested(pthread_mutex_t *x, pthread_mutex_t *y) {
    pthread_mutex_lock(x);
    pthread_mutex_lock(y);
    pthread_mutex_unlock(y);
    pthread_mutex_unlock(x);
}

static char *self_dir(void) {
    static char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n < 0)
        die("readlink");
    dir[n] = 0;
    *strrchr(dir, '/') = 0;
    return dir;
}

/* ---- alloc ---- */

static void *alloc_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&a);
        void *p = malloc(16 + i % 4000);
        pthread_mutex_lock(&b);
        free(malloc(64));
        pthread_mutex_unlock(&b);
        pthread_mutex_unlock(&a);
        free(p);
    }
    return NULL;
}

static int mode_alloc(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn("allocator", alloc_worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("alloc: done\n");
    return 0;
}

/* ---- closefds ---- */

static int mode_closefds(const char *path) {
    /* What a daemon does on start: every descriptor but 0-2 goes. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long max = rl.rlim_cur > 65536 ? 65536 : (long)rl.rlim_cur;
    for (long fd = 3; fd < max; fd++)
        close((int)fd);
    /* Its stderr goes to a file of its own too. */
    char errpath[4200];
    snprintf(errpath, sizeof errpath, "%s.err", path);
    int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (e < 0)
        die("open err");
    dup2(e, 2);
    close(e);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("open");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0)
        die("socket");
    /* New facts: the shim has something to write now. */
    nested(&a, &b);
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    pthread_mutex_lock(&b);
    pthread_rwlock_wrlock(&rw);
    pthread_rwlock_unlock(&rw);
    pthread_mutex_unlock(&b);
    const char data[] = "the daemon's own data\n";
    if (write(fd, data, sizeof data - 1) != (ssize_t)(sizeof data - 1))
        die("write");
    close(fd);
    close(s);
    /* Exactly its data, nothing else. */
    char buf[4096];
    int r = open(path, O_RDONLY);
    ssize_t n = read(r, buf, sizeof buf);
    close(r);
    if (n != (ssize_t)(sizeof data - 1) || memcmp(buf, data, (size_t)n) != 0) {
        fprintf(stdout, "closefds: the file holds %zd bytes, not its own %zu\n", n,
                sizeof data - 1);
        return 1;
    }
    r = open(errpath, O_RDONLY);
    n = read(r, buf, sizeof buf);
    close(r);
    if (n != 0) {
        fprintf(stdout, "closefds: its stderr file got %zd bytes it never wrote\n", n);
        return 1;
    }
    printf("closefds: done\n");
    return 0;
}

/* ---- dlopen ---- */

static int mode_dlopen(void) {
    char lib[4200];
    snprintf(lib, sizeof lib, "%s/libctor.so", self_dir());
    void *h = dlopen(lib, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    int (*done)(void) = (int (*)(void))dlsym(h, "ctor_done");
    int ok = done && done() == 1;
    dlclose(h);
    printf("dlopen: %s\n", ok ? "done" : "constructor did not finish");
    return ok ? 0 : 1;
}

/* ---- forks ---- */

static volatile int stop_loading;

static void *loader(void *arg) {
    const char *lib = arg;
    while (!stop_loading) {
        void *h = dlopen(lib, RTLD_NOW);
        if (h)
            dlclose(h);
    }
    return NULL;
}

static int mode_forks(int n) {
    static char lib[4200];
    snprintf(lib, sizeof lib, "%s/liblocky.so", self_dir());
    pthread_t t = spawn("loader", loader, lib);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p == 0) {
            /* A child that records: new facts need stacks and modules. */
            static pthread_mutex_t c = PTHREAD_MUTEX_INITIALIZER;
            nested(&b, &c);
            nested(&a, &c);
            _exit(0);
        }
        int st;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    stop_loading = 1;
    pthread_join(t, NULL);
    printf("forks: %d of %d children failed\n", bad, n);
    return bad != 0;
}

/* ---- smallstack ---- */

static NOINLINE int use_stack(int depth) {
    volatile char pad[512];
    pad[0] = (char)depth;
    nested(&a, &b);
    if (depth > 0)
        return use_stack(depth - 1) + pad[0];
    return pad[0];
}

static void *small_worker(void *arg) {
    (void)arg;
    nested(&b, &a); /* a slow path: a new fact, near the top of the stack */
    use_stack(15); /* 16 frames of > 512 bytes: 8 KiB and more */
    return NULL;
}

static int mode_smallstack(void) {
    pthread_attr_t at;
    pthread_attr_init(&at);
    check(pthread_attr_setstacksize(&at, 16384), "setstacksize");
    pthread_t t;
    check(pthread_create(&t, &at, small_worker, NULL), "pthread_create (16 KiB stack)");
    pthread_join(t, NULL);
    printf("smallstack: done\n");
    return 0;
}

/* ---- tasks ---- */

static void *task(void *arg) {
    (void)arg;
    nested(&a, &b);
    return NULL;
}

static int mode_tasks(double secs) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long n = 0;
    do {
        pthread_t th;
        check(pthread_create(&th, NULL, task, NULL), "pthread_create");
        pthread_join(th, NULL);
        n++;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
    printf("tasks: %ld\n", n);
    return 0;
}

/* ---- privdrop ---- */

static void *order_ab(void *arg) {
    (void)arg;
    turn_wait(0);
    nested(&a, &b);
    turn_pass();
    return NULL;
}

static void *order_ba(void *arg) {
    (void)arg;
    turn_wait(1);
    nested(&b, &a);
    return NULL;
}

/* Both orders by two threads running at once, taking turns. */
static void two_workers(void) {
    pthread_t ab = spawn("worker-ab", order_ab, NULL);
    pthread_t ba = spawn("worker-ba", order_ba, NULL);
    pthread_join(ab, NULL);
    pthread_join(ba, NULL);
}

static int mode_privdrop(void) {
    pid_t p = fork();
    if (p < 0)
        die("fork");
    if (p == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            die("drop privileges");
        /* Two threads at once, taking turns: an inversion that can deadlock. */
        two_workers();
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("privdrop: child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- reload ---- */

static void nothing(void) {}

static void take_b(void) {
    pthread_mutex_lock(&b);
    pthread_mutex_unlock(&b);
}

static void *first_load(void *fn) {
    pthread_mutex_lock(&b);
    ((void (*)(void (*)(void)))fn)(nothing);
    pthread_mutex_unlock(&b);
    return NULL;
}

static void *second_load(void *fn) {
    ((void (*)(void (*)(void)))fn)(take_b);
    return NULL;
}

static int mode_reload(void) {
    char lib[4200];
    snprintf(lib, sizeof lib, "%s/libreload.so", self_dir());
    void *bases[2];
    for (int i = 0; i < 2; i++) {
        void *h = dlopen(lib, RTLD_NOW);
        if (!h) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 2;
        }
        void *fn = dlsym(h, "with_lib_lock");
        bases[i] = fn;
        pthread_join(spawn(i == 0 ? "first-load" : "second-load", i == 0 ? first_load : second_load, fn), NULL);
        dlclose(h);
    }
    printf("reload: %s address\n", bases[0] == bases[1] ? "same" : "another");
    return 0;
}

/* ---- notrace ---- */

static int mode_notrace(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 3; /* 0, 1 and 2 are open: no new descriptor */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("setrlimit");
    pid_t p = fork();
    if (p == 0) {
        two_workers();
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf("notrace: child %d exited %d\n", (int)p, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* ---- paused ---- */

static int feed[2];
static volatile int feeding = 1;

static void *ticker(void *arg) {
    (void)arg;
    while (feeding) {
        usleep(50000);
        char x = 1;
        if (write(feed[1], &x, 1) != 1)
            die("write");
    }
    close(feed[1]);
    return NULL;
}

static void *poller(void *arg) {
    (void)arg;
    char x;
    for (;;) {
        pthread_mutex_lock(&a);
        ssize_t n = read(feed[0], &x, 1);
        pthread_mutex_unlock(&a);
        if (n <= 0)
            return NULL;
    }
}

static int mode_paused(void) {
    if (pipe(feed) != 0)
        die("pipe");
    pthread_t t = spawn("ticker", ticker, NULL);
    pthread_t p = spawn("poller", poller, NULL);
    sleep(1);
    pid_t c = fork();
    if (c == 0) {
        pid_t parent = getppid();
        kill(parent, SIGSTOP);
        sleep(3);
        kill(parent, SIGCONT);
        _exit(0);
    }
    int st;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    sleep(2);
    feeding = 0;
    pthread_join(t, NULL);
    pthread_join(p, NULL);
    printf("paused: done\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "alloc"))
        return mode_alloc();
    if (!strcmp(mode, "closefds") && argc > 2)
        return mode_closefds(argv[2]);
    if (!strcmp(mode, "dlopen"))
        return mode_dlopen();
    if (!strcmp(mode, "forks"))
        return mode_forks(argc > 2 ? atoi(argv[2]) : 100);
    if (!strcmp(mode, "smallstack"))
        return mode_smallstack();
    if (!strcmp(mode, "tasks"))
        return mode_tasks(argc > 2 ? atof(argv[2]) : 5);
    if (!strcmp(mode, "privdrop"))
        return mode_privdrop();
    if (!strcmp(mode, "paused"))
        return mode_paused();
    if (!strcmp(mode, "reload"))
        return mode_reload();
    if (!strcmp(mode, "notrace"))
        return mode_notrace();
    fprintf(stderr,
            "usage: host alloc | closefds FILE | dlopen | forks [N] | smallstack | tasks [SECS] | "
            "privdrop | paused | reload | notrace\n");
    return 2;
}
