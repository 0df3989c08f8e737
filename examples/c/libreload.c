/*
 * libreload: a library with a static mutex, loaded, unloaded and loaded
 * again (host reload). Each load's mutex is another lock, even at the same
 * address.
 */
#include <pthread.h>

static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs cb under the library's lock. */
void with_lib_lock(void (*cb)(void)) {
    pthread_mutex_lock(&lib_lock);
    cb();
    pthread_mutex_unlock(&lib_lock);
}
