/*
 * reuse: a lock is destroyed and a new one initialised at the same address.
 * The first thread orders slot→other; the second, after the first lock is
 * gone, orders other→slot on the *new* lock. Two different locks: no cycle.
 */
#include "common.h"

static pthread_mutex_t slot;   /* storage reused for two locks */
static pthread_mutex_t other = PTHREAD_MUTEX_INITIALIZER;

static void *first_life(void *arg) {
    (void)arg;
    pthread_mutex_init(&slot, NULL);
    pthread_mutex_lock(&slot);
    pthread_mutex_lock(&other);
    pthread_mutex_unlock(&other);
    pthread_mutex_unlock(&slot);
    pthread_mutex_destroy(&slot);
    return NULL;
}

static void *second_life(void *arg) {
    (void)arg;
    pthread_mutex_init(&slot, NULL);
    pthread_mutex_lock(&other);
    pthread_mutex_lock(&slot);
    pthread_mutex_unlock(&slot);
    pthread_mutex_unlock(&other);
    pthread_mutex_destroy(&slot);
    return NULL;
}

int main(void) {
    pthread_t t = spawn("first-life", first_life, NULL);
    pthread_join(t, NULL);
    t = spawn("second-life", second_life, NULL);
    pthread_join(t, NULL);
    puts("reuse: done");
    return 0;
}
