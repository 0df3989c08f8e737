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
 *
 * With --ends the pipe gets its byte after 3 s (the slow read returns),
 * and 20 readers queue instead of 3: a stall that ends by itself, with
 * 21 threads behind the holder.
 */
#include "common.h"
#include <time.h>

#define MAX_READERS 20

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

static NOINLINE void *late_feeder(void *arg) {
    (void)arg;
    pause_ms(3000);
    if (write(never_written[1], "x", 1) != 1) /* the slow read returns */
        die("write");
    return NULL;
}

int main(int argc, char **argv) {
    int ends = has_flag(argc, argv, "--ends");
    int readers = ends ? MAX_READERS : 3;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&table, &attr);
    if (pipe(never_written) < 0 || pipe(other_pipe) < 0)
        die("pipe");
    if (has_flag(argc, argv, "--bystander"))
        spawn("bystander", bystander, NULL);
    pthread_t t[MAX_READERS + 2];
    t[0] = spawn("slow-holder", slow_holder, NULL);
    t[1] = spawn("writer", writer, NULL);
    for (int i = 0; i < readers; i++)
        t[2 + i] = spawn("reader", reader, NULL);
    if (ends)
        pthread_detach(spawn("late-feeder", late_feeder, NULL));
    for (int i = 0; i < readers + 2; i++)
        pthread_join(t[i], NULL);
    return 0;
}
