/*
 * abba: the classic lock-order inversion. One thread takes A then B, the
 * other B then A. By default both threads run at once but take turns (the
 * second waits at a barrier until the first has let go of both locks), so
 * it never hangs and holdcheck predicts the deadlock; with --hang the
 * threads meet while each holds its first lock, and deadlock.
 */
#include "common.h"

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t meet;
static int hang;

static NOINLINE void take_second(pthread_mutex_t *m) {
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
}

static NOINLINE void *a_then_b(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock_a);
    if (hang)
        pthread_barrier_wait(&meet);
    take_second(&lock_b);
    pthread_mutex_unlock(&lock_a);
    if (!hang)
        pthread_barrier_wait(&meet); /* your turn */
    return NULL;
}

static NOINLINE void *b_then_a(void *arg) {
    (void)arg;
    if (!hang)
        pthread_barrier_wait(&meet); /* after a-then-b let go */
    pthread_mutex_lock(&lock_b);
    if (hang)
        pthread_barrier_wait(&meet);
    take_second(&lock_a);
    pthread_mutex_unlock(&lock_b);
    return NULL;
}

int main(int argc, char **argv) {
    hang = has_flag(argc, argv, "--hang");
    pthread_barrier_init(&meet, NULL, 2);
    pthread_t t1 = spawn("a-then-b", a_then_b, NULL);
    pthread_t t2 = spawn("b-then-a", b_then_a, NULL);
    if (has_flag(argc, argv, "--main-exits"))
        pthread_exit(NULL); /* the leader is a zombie from here on */
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    puts("abba: done");
    return 0;
}
