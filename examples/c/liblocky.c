/*
 * liblocky: a library that takes locks, for mutexkinds dlopen: in its
 * constructor, and nested in locky_work. Built as liblocky.so. Its
 * transfer(first, second) takes two locks it is given, in that order
 * (lockorder forked-dlopen calls it from a fork child that loads it).
 */
#include <pthread.h>

static pthread_mutex_t outer = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t inner;
static long counter;

__attribute__((constructor)) static void locky_init(void) {
    pthread_mutex_init(&inner, NULL);
    pthread_mutex_lock(&outer);
    counter = 0;
    pthread_mutex_unlock(&outer);
}

__attribute__((destructor)) static void locky_fini(void) {
    pthread_mutex_destroy(&inner);
}

long locky_work(int n) {
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&outer);
        pthread_mutex_lock(&inner);
        counter++;
        pthread_mutex_unlock(&inner);
        pthread_mutex_unlock(&outer);
    }
    return counter;
}

__attribute__((noinline)) void transfer(pthread_mutex_t *first, pthread_mutex_t *second) {
    pthread_mutex_lock(first);
    pthread_mutex_lock(second);
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
}
