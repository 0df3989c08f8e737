/*
 * rwlock_stall: incident 003 (the mmap_sem stall) in userspace.
 *
 * A reader holds a writer-preferring rwlock while it blocks in read() on a
 * pipe nobody writes to (the kernel's reader stuck in I/O). A writer queues
 * for the lock; behind it, every new reader queues too. Nothing is
 * deadlocked, everything is stuck: the watchdog reports one stall whose
 * root is the holder and its read().
 *
 * With --bystander one more thread blocks in read() on another pipe,
 * holding nothing: from outside, either could be the lock's reader.
 */
#include "common.h"
#include <time.h>

#define READERS 3

static pthread_rwlock_t table;
static int never_written[2];

static void pause_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static NOINLINE void *slow_holder(void *arg) {
    (void)arg;
    char c;
    pthread_rwlock_rdlock(&table);
    if (read(never_written[0], &c, 1) < 0) /* blocks for ever */
        die("read");
    pthread_rwlock_unlock(&table);
    return NULL;
}

static int other_pipe[2];

static NOINLINE void *bystander(void *arg) {
    (void)arg;
    char c;
    if (read(other_pipe[0], &c, 1) < 0) /* blocks for ever, holding nothing */
        die("read");
    return NULL;
}

static NOINLINE void *writer(void *arg) {
    (void)arg;
    pause_ms(100);
    pthread_rwlock_wrlock(&table);
    pthread_rwlock_unlock(&table);
    return NULL;
}

static NOINLINE void *reader(void *arg) {
    (void)arg;
    pause_ms(200);
    pthread_rwlock_rdlock(&table);
    pthread_rwlock_unlock(&table);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&table, &attr);
    if (pipe(never_written) < 0 || pipe(other_pipe) < 0)
        die("pipe");
    if (has_flag(argc, argv, "--bystander"))
        spawn("bystander", bystander, NULL);
    pthread_t t[READERS + 2];
    t[0] = spawn("slow-holder", slow_holder, NULL);
    t[1] = spawn("writer", writer, NULL);
    for (int i = 0; i < READERS; i++)
        t[2 + i] = spawn("reader", reader, NULL);
    for (int i = 0; i < READERS + 2; i++)
        pthread_join(t[i], NULL);
    return 0;
}
