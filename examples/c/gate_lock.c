/*
 * gate_lock: A→B in one thread, B→A in another, but both orders are only
 * ever taken under the gate lock G, so they can never interleave. Not a
 * deadlock; a checker that reports it cries wolf.
 */
#include "common.h"

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;

static void *forward(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&gate);
        pthread_mutex_lock(&lock_a);
        pthread_mutex_lock(&lock_b);
        pthread_mutex_unlock(&lock_b);
        pthread_mutex_unlock(&lock_a);
        pthread_mutex_unlock(&gate);
    }
    return NULL;
}

static void *backward(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&gate);
        pthread_mutex_lock(&lock_b);
        pthread_mutex_lock(&lock_a);
        pthread_mutex_unlock(&lock_a);
        pthread_mutex_unlock(&lock_b);
        pthread_mutex_unlock(&gate);
    }
    return NULL;
}

int main(void) {
    pthread_t t1 = spawn("forward", forward, NULL);
    pthread_t t2 = spawn("backward", backward, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    puts("gate_lock: done");
    return 0;
}
