/*
 * abba: the classic lock-order inversion. One thread takes A then B, the
 * other B then A. By default both threads run at once but take turns (the
 * second waits at a barrier until the first has let go of both locks), so
 * it never hangs and holdcheck predicts the deadlock; with --hang the
 * threads meet while each holds its first lock, and deadlock. With --timed
 * only time keeps them apart (the second starts 100 ms later), as in most
 * programs where such a bug sleeps: `holdcheck confirm` makes it hang.
 *
 * With --processes the two locks are process-shared mutexes in shared
 * memory, and the two sides are two processes (the parent takes A then B,
 * a forked child B then A). With --heap they are two heap objects' locks,
 * made by account_new(). With --robust or --pi the locks are robust or
 * priority-inheritance mutexes, whose lock word holds the owner's tid.
 * With --timedlock=MS each side takes its second lock with
 * pthread_mutex_timedlock, giving up after MS ms: met with --hang, both
 * give up, and the program ends.
 */
#include "common.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/wait.h>

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t static_meet;
/* The locks the two sides take: these, or process-shared ones. */
static pthread_mutex_t *la = &lock_a, *lb = &lock_b;
static pthread_barrier_t *meet = &static_meet;
static int hang, timed, pi;
/* a-then-b's thread id, for --pi (see await_blocked). */
static _Atomic pid_t a_tid;
/* The mutexes' attributes: the kind the flags ask for. */
static pthread_mutexattr_t kind;

static long timedlock_ms;

/* --timedlock: the second lock tried until a deadline, given up then. */
static NOINLINE void take_second_timed(pthread_mutex_t *m) {
    struct timespec t = deadline_in_ms(timedlock_ms);
    if (pthread_mutex_timedlock(m, &t) == 0)
        pthread_mutex_unlock(m);
}

static NOINLINE void take_second(pthread_mutex_t *m) {
    if (timedlock_ms > 0) {
        take_second_timed(m);
        return;
    }
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
}

/*
 * --pi --hang: the kernel refuses the priority-inheritance lock that closes
 * the cycle (EDEADLK). If both sides enter the kernel at once, both can be
 * refused, and glibc parks both for ever in waits of their own; b-then-a
 * therefore asks for its second lock only once a-then-b sleeps in its
 * futex call on b, so that exactly one side is refused.
 */
static void await_blocked(pid_t tid, const pthread_mutex_t *on) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    for (int i = 0; i < 10000; i++) {
        long nr = -1;
        unsigned long word = 0;
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld %lx", &nr, &word) != 2)
                nr = -1;
            fclose(f);
        }
        if (nr == SYS_futex && word == (unsigned long)on)
            return;
        usleep(1000);
    }
}

static NOINLINE void *a_then_b(void *arg) {
    (void)arg;
    a_tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(la);
    if (hang)
        pthread_barrier_wait(meet);
    take_second(lb);
    pthread_mutex_unlock(la);
    if (!hang && !timed)
        pthread_barrier_wait(meet); /* your turn */
    return NULL;
}

static NOINLINE void *b_then_a(void *arg) {
    (void)arg;
    if (timed)
        usleep(100 * 1000); /* a-then-b is done by then, as a rule */
    else if (!hang)
        pthread_barrier_wait(meet); /* after a-then-b let go */
    pthread_mutex_lock(lb);
    if (hang)
        pthread_barrier_wait(meet);
    if (hang && pi && a_tid)
        await_blocked(a_tid, lb);
    take_second(la);
    pthread_mutex_unlock(lb);
    return NULL;
}

/* A heap object with its own lock, as a bank account has. */
struct account {
    pthread_mutex_t lock;
    long balance;
};

static NOINLINE struct account *account_new(void) {
    struct account *a = calloc(1, sizeof *a);
    if (!a)
        die("calloc");
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

/* The two sides as two processes, over process-shared locks. */
static int processes(void) {
    struct shared {
        pthread_mutex_t a, b;
        pthread_barrier_t meet;
    } *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap");
    pthread_mutexattr_setpshared(&kind, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->a, &kind);
    pthread_mutex_init(&sh->b, &kind);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->meet, &ba, 2);
    la = &sh->a;
    lb = &sh->b;
    meet = &sh->meet;
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        b_then_a(NULL);
        _exit(0);
    }
    a_then_b(NULL);
    waitpid(child, NULL, 0);
    puts("abba: done");
    return 0;
}

int main(int argc, char **argv) {
    hang = has_flag(argc, argv, "--hang");
    timed = has_flag(argc, argv, "--timed");
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--timedlock=", 12) == 0)
            timedlock_ms = atol(argv[i] + 12);
    pthread_mutexattr_init(&kind);
    if (has_flag(argc, argv, "--robust"))
        pthread_mutexattr_setrobust(&kind, PTHREAD_MUTEX_ROBUST);
    pi = has_flag(argc, argv, "--pi");
    if (pi)
        pthread_mutexattr_setprotocol(&kind, PTHREAD_PRIO_INHERIT);
    if (has_flag(argc, argv, "--robust") || has_flag(argc, argv, "--pi")) {
        pthread_mutex_init(&lock_a, &kind);
        pthread_mutex_init(&lock_b, &kind);
    }
    if (has_flag(argc, argv, "--processes"))
        return processes();
    if (has_flag(argc, argv, "--heap")) {
        la = &account_new()->lock;
        lb = &account_new()->lock;
    }
    pthread_barrier_init(meet, NULL, 2);
    pthread_t t1 = spawn("a-then-b", a_then_b, NULL);
    pthread_t t2 = spawn("b-then-a", b_then_a, NULL);
    if (has_flag(argc, argv, "--main-exits"))
        pthread_exit(NULL); /* the leader is a zombie from here on */
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    puts("abba: done");
    return 0;
}
