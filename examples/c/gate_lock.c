/*
 * gate_lock: A→B in one thread, B→A in another, but both orders are only
 * ever taken under the gate lock G, so they can never interleave. Not a
 * deadlock; a checker that reports it cries wolf.
 *
 * With --ungated the same code skips the gate, and the backward thread
 * starts 100 ms later instead: a real (timing-kept-apart) inversion, whose
 * prediction `holdcheck confirm` then steers the gated program toward.
 */
#include "common.h"

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static int ungated;

static void gate_lock(void) {
    if (!ungated)
        pthread_mutex_lock(&gate);
}

static void gate_unlock(void) {
    if (!ungated)
        pthread_mutex_unlock(&gate);
}

static void *forward(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        gate_lock();
        pthread_mutex_lock(&lock_a);
        pthread_mutex_lock(&lock_b);
        pthread_mutex_unlock(&lock_b);
        pthread_mutex_unlock(&lock_a);
        gate_unlock();
    }
    return NULL;
}

static void *backward(void *arg) {
    (void)arg;
    if (ungated)
        usleep(100 * 1000);
    for (int i = 0; i < 100; i++) {
        gate_lock();
        pthread_mutex_lock(&lock_b);
        pthread_mutex_lock(&lock_a);
        pthread_mutex_unlock(&lock_a);
        pthread_mutex_unlock(&lock_b);
        gate_unlock();
    }
    return NULL;
}

int main(int argc, char **argv) {
    ungated = has_flag(argc, argv, "--ungated");
    pthread_t t1 = spawn("forward", forward, NULL);
    pthread_t t2 = spawn("backward", backward, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    puts("gate_lock: done");
    return 0;
}
