/*
 * condvar: a bounded queue with one mutex and two condition variables, a
 * producer and a consumer, plus a statistics lock always taken inside the
 * queue lock. pthread_cond_wait releases the mutex while it waits: nothing
 * here can deadlock, and nothing must be reported.
 */
#include "common.h"

#define SLOTS 4
#define ITEMS 2000

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static int queue[SLOTS], head, count;
static long total;

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&queue_lock);
        while (count == SLOTS)
            pthread_cond_wait(&not_full, &queue_lock);
        queue[(head + count++) % SLOTS] = i;
        pthread_mutex_lock(&stats_lock);
        total += i;
        pthread_mutex_unlock(&stats_lock);
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&queue_lock);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    long sum = 0;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&queue_lock);
        while (count == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&not_empty, &queue_lock, &until);
        }
        sum += queue[head];
        head = (head + 1) % SLOTS;
        count--;
        pthread_mutex_lock(&stats_lock);
        total -= queue[(head + SLOTS - 1) % SLOTS];
        pthread_mutex_unlock(&stats_lock);
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&queue_lock);
    }
    return (void *)sum;
}

int main(void) {
    pthread_t p = spawn("producer", producer, NULL);
    pthread_t c = spawn("consumer", consumer, NULL);
    void *sum;
    pthread_join(p, NULL);
    pthread_join(c, &sum);
    printf("condvar: consumed %ld, balance %ld\n", (long)sum, total);
    return 0;
}
