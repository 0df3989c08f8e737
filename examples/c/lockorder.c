/*
 * lockorder: lock-order inversions of the shapes the peers' own test suites
 * hold (TSan's deadlock tests, Helgrind's tc13/tc14, lockdep's AB-BA and
 * ABC-ABC self-tests), none of which hangs in this run:
 *   one-thread   one thread calls transfer(a, b), then transfer(b, a)
 *   forked       the same in a fork child that does not exec, after its
 *                parent took C->G
 *   forked-first the same in a fork child whose parent never nested two
 *                locks (a Zygote's child: the parent never unwound)
 *   forked-dlopen the same in a fork child, by the transfer() of
 *                liblocky.so, which it loads after the fork
 *   abcabc       one thread takes A->B, then B->C, then C->A
 *   init-phase   main takes A->B, then starts a worker that takes B->A
 *   joined       a worker takes A->B and is joined; the next takes B->A
 *   ring N       N threads, thread i takes lock i then lock i+1 (mod N),
 *                one after the other (all N threads are running)
 *   dining N     the dining philosophers: N threads, philosopher i takes
 *                fork i then fork i+1 (mod N), starting i * 30 ms after
 *                the first: only time keeps them apart (`holdcheck
 *                confirm` makes them deadlock)
 *   gated        one thread takes A->B and B->A, both under lock G
 *   spin         two threads take spinlocks S->T and T->S, taking turns
 *   spin-hang    the same, meeting with each holding its first: they
 *                deadlock, spinning
 *   nested N     one thread holds N locks at once, taken in order; another
 *                takes the last, then the first (taking turns)
 */
#include "common.h"
#include <sched.h>
#include <stdatomic.h>
#include <dlfcn.h>
#include <libgen.h>
#include <sys/wait.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t c = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g = PTHREAD_MUTEX_INITIALIZER;

/* Takes `first`, then `second`: a bank transfer between two accounts. */
static NOINLINE void transfer(pthread_mutex_t *first, pthread_mutex_t *second) {
    pthread_mutex_lock(first);
    pthread_mutex_lock(second);
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
}

static NOINLINE void *b_then_a(void *arg) {
    (void)arg;
    transfer(&b, &a);
    return NULL;
}

static NOINLINE void *a_then_b(void *arg) {
    (void)arg;
    transfer(&a, &b);
    return NULL;
}

static pthread_spinlock_t s, t;
static pthread_barrier_t meet;
static int spin_hang;

static NOINLINE void spin_transfer(pthread_spinlock_t *first, pthread_spinlock_t *second) {
    pthread_spin_lock(first);
    if (spin_hang)
        pthread_barrier_wait(&meet);
    pthread_spin_lock(second);
    pthread_spin_unlock(second);
    pthread_spin_unlock(first);
}

static NOINLINE void *s_then_t(void *arg) {
    (void)arg;
    spin_transfer(&s, &t);
    if (!spin_hang)
        pthread_barrier_wait(&meet); /* your turn */
    return NULL;
}

static NOINLINE void *t_then_s(void *arg) {
    (void)arg;
    if (!spin_hang)
        pthread_barrier_wait(&meet);
    spin_transfer(&t, &s);
    return NULL;
}

#define MAX_RING 512
static pthread_mutex_t ring[MAX_RING];
static int ring_len;

static NOINLINE void *ring_member(void *arg) {
    int i = (int)(long)arg;
    turn_wait(i);
    transfer(&ring[i], &ring[(i + 1) % ring_len]);
    turn_pass();
    return NULL;
}

static NOINLINE void *philosopher(void *arg) {
    int i = (int)(long)arg;
    usleep(i * 30 * 1000);
    transfer(&ring[i], &ring[(i + 1) % ring_len]);
    return NULL;
}

/* Holds every lock of the ring at once, taken in order. */
static NOINLINE void *nester(void *arg) {
    (void)arg;
    turn_wait(0);
    for (int i = 0; i < ring_len; i++)
        pthread_mutex_lock(&ring[i]);
    for (int i = ring_len - 1; i >= 0; i--)
        pthread_mutex_unlock(&ring[i]);
    turn_pass();
    return NULL;
}

static NOINLINE void *reverser(void *arg) {
    (void)arg;
    turn_wait(1);
    transfer(&ring[ring_len - 1], &ring[0]);
    return NULL;
}

/* Forks a child that takes a->b, then b->a, by `how`, or by the transfer()
 * of liblocky.so (next to this program), which it loads after the fork;
 * waits for it. */
static void in_a_child(void (*how)(pthread_mutex_t *, pthread_mutex_t *)) {
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        if (!how) {
            char exe[4096], lib[4200];
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            if (n < 0)
                die("readlink");
            exe[n] = 0;
            snprintf(lib, sizeof lib, "%s/liblocky.so", dirname(exe));
            void *h = dlopen(lib, RTLD_NOW);
            if (!h) {
                fprintf(stderr, "dlopen: %s\n", dlerror());
                exit(1);
            }
            how = (void (*)(pthread_mutex_t *, pthread_mutex_t *))dlsym(h, "transfer");
            if (!how)
                die("dlsym");
        }
        how(&a, &b);
        how(&b, &a);
        exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("the child failed");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "one-thread") == 0) {
        transfer(&a, &b);
        transfer(&b, &a);
    } else if (strcmp(mode, "forked") == 0 || strcmp(mode, "forked-first") == 0) {
        if (strcmp(mode, "forked") == 0)
            transfer(&c, &g); /* the parent's stacks, before the fork */
        in_a_child(transfer);
    } else if (strcmp(mode, "forked-dlopen") == 0) {
        in_a_child(NULL);
    } else if (strcmp(mode, "abcabc") == 0) {
        transfer(&a, &b);
        transfer(&b, &c);
        transfer(&c, &a);
    } else if (strcmp(mode, "init-phase") == 0) {
        transfer(&a, &b);
        pthread_join(spawn("worker", b_then_a, NULL), NULL);
    } else if (strcmp(mode, "joined") == 0) {
        pthread_join(spawn("first", a_then_b, NULL), NULL);
        pthread_join(spawn("second", b_then_a, NULL), NULL);
    } else if ((strcmp(mode, "ring") == 0 || strcmp(mode, "dining") == 0) && argc > 2) {
        int dining = strcmp(mode, "dining") == 0;
        ring_len = atoi(argv[2]);
        if (ring_len < 2 || ring_len > MAX_RING) {
            fprintf(stderr, "lockorder %s: 2 to %d locks\n", mode, MAX_RING);
            return 2;
        }
        pthread_t t[MAX_RING];
        for (int i = 0; i < ring_len; i++)
            pthread_mutex_init(&ring[i], NULL);
        for (int i = 0; i < ring_len; i++) {
            char name[16];
            snprintf(name, sizeof name, "%s-%d", dining ? "philosopher" : "ring", i);
            t[i] = spawn(strdup(name), dining ? philosopher : ring_member, (void *)(long)i);
        }
        for (int i = 0; i < ring_len; i++)
            pthread_join(t[i], NULL);
    } else if (strcmp(mode, "nested") == 0 && argc > 2) {
        ring_len = atoi(argv[2]);
        if (ring_len < 2 || ring_len > MAX_RING) {
            fprintf(stderr, "lockorder nested: 2 to %d locks\n", MAX_RING);
            return 2;
        }
        for (int i = 0; i < ring_len; i++)
            pthread_mutex_init(&ring[i], NULL);
        pthread_t one = spawn("nester", nester, NULL);
        pthread_t two = spawn("reverser", reverser, NULL);
        pthread_join(one, NULL);
        pthread_join(two, NULL);
    } else if (strcmp(mode, "gated") == 0) {
        pthread_mutex_lock(&g);
        transfer(&a, &b);
        transfer(&b, &a);
        pthread_mutex_unlock(&g);
    } else if (strcmp(mode, "spin") == 0 || strcmp(mode, "spin-hang") == 0) {
        spin_hang = strcmp(mode, "spin-hang") == 0;
        pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE);
        pthread_spin_init(&t, PTHREAD_PROCESS_PRIVATE);
        pthread_barrier_init(&meet, NULL, 2);
        pthread_t one = spawn("s-then-t", s_then_t, NULL);
        pthread_t two = spawn("t-then-s", t_then_s, NULL);
        pthread_join(one, NULL);
        pthread_join(two, NULL);
    } else {
        fprintf(stderr, "usage: lockorder one-thread|forked|forked-first|forked-dlopen|abcabc|init-phase|joined|ring N|dining N|nested N|gated|spin|spin-hang\n");
        return 2;
    }
    printf("lockorder %s: done\n", mode);
    return 0;
}
