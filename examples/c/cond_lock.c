/*
 * cond_lock: a lock held across pthread_cond_wait, whose only signaller
 * takes that lock between two signals.
 *
 * The flusher takes the configuration lock for a whole batch and, under it,
 * waits for the collector's signal that the batch is ready. The collector,
 * between two signals, reloads the configuration: it takes that lock.
 *
 *   cond_lock --light    the collector reloads only once the flusher is
 *                        done: the run never hangs, the cycle is in it.
 *   cond_lock --hang     it reloads while the flusher waits: hangs for ever.
 *   cond_lock --ordered  the flusher lets go of the configuration lock
 *                        before it waits: no cycle, nothing to report.
 *   cond_lock --light --two-signallers
 *                        a heartbeat thread signals the condition too,
 *                        never under the configuration lock: it can always
 *                        wake the flusher, so the wait is no cycle.
 */
#include "common.h"
#include <stdatomic.h>

#define ROUNDS 50

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t batch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t batch_ready_cond = PTHREAD_COND_INITIALIZER;
static int batch_ready;
static atomic_int waiting_for, flusher_done;
static int ordered, hang;
static int config_version;

static NOINLINE void wait_for_batch(int round) {
    pthread_mutex_lock(&batch_lock);
    atomic_store(&waiting_for, round);
    while (!batch_ready)
        pthread_cond_wait(&batch_ready_cond, &batch_lock);
    batch_ready = 0;
    pthread_mutex_unlock(&batch_lock);
}

static NOINLINE void *flusher_main(void *arg) {
    (void)arg;
    for (int round = 1; round <= ROUNDS; round++) {
        pthread_mutex_lock(&config_lock);
        int version = config_version;
        if (ordered)
            pthread_mutex_unlock(&config_lock);
        wait_for_batch(round);
        if (!ordered)
            pthread_mutex_unlock(&config_lock);
        (void)version;
    }
    atomic_store(&flusher_done, 1);
    return NULL;
}

static NOINLINE void reload_config(void) {
    pthread_mutex_lock(&config_lock);
    config_version++;
    pthread_mutex_unlock(&config_lock);
}

static NOINLINE void publish_batch(void) {
    pthread_mutex_lock(&batch_lock);
    batch_ready = 1;
    pthread_cond_signal(&batch_ready_cond);
    pthread_mutex_unlock(&batch_lock);
}

static NOINLINE void *collector_main(void *arg) {
    (void)arg;
    for (int round = 1; round <= ROUNDS; round++) {
        while (atomic_load(&waiting_for) != round)
            usleep(100);
        publish_batch();
        if (hang && round == 3) {
            /* The flusher is back in its wait, under the lock. */
            while (atomic_load(&waiting_for) != round + 1)
                usleep(100);
            reload_config();
        }
        if (ordered && round % 10 == 0)
            reload_config();
    }
    while (!atomic_load(&flusher_done))
        usleep(100);
    reload_config();
    publish_batch(); /* nobody waits any more */
    return NULL;
}

static atomic_int heartbeats;

static NOINLINE void *heartbeat_main(void *arg) {
    (void)arg;
    while (!atomic_load(&flusher_done)) {
        pthread_mutex_lock(&batch_lock);
        pthread_cond_signal(&batch_ready_cond);
        pthread_mutex_unlock(&batch_lock);
        atomic_fetch_add(&heartbeats, 1);
        usleep(1000);
    }
    return NULL;
}

int main(int argc, char **argv) {
    hang = has_flag(argc, argv, "--hang");
    ordered = has_flag(argc, argv, "--ordered");
    int two = has_flag(argc, argv, "--two-signallers");
    pthread_t h = 0;
    if (two) {
        /* The heartbeat signals before the flusher ever waits. */
        h = spawn("heartbeat", heartbeat_main, NULL);
        while (atomic_load(&heartbeats) < 2)
            usleep(100);
    }
    pthread_t f = spawn("flusher", flusher_main, NULL);
    pthread_t c = spawn("collector", collector_main, NULL);
    pthread_join(f, NULL);
    pthread_join(c, NULL);
    if (two)
        pthread_join(h, NULL);
    printf("cond_lock: %d batches flushed, configuration version %d\n", ROUNDS, config_version);
    return 0;
}
