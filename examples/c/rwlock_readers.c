/*
 * rwlock_readers: one thread takes the rwlock R for reading, then mutex M;
 * another takes M, then R for reading; a third writes R now and then.
 *
 * On glibc's default (reader-preferring) rwlock a reader never waits while
 * only readers hold R, so the read/read "inversion" cannot deadlock: nothing
 * must be reported. With --writer-preferring (the
 * PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP kind), a queued writer blocks
 * new readers, and the same code can deadlock: that must be reported.
 */
#include "common.h"

static pthread_rwlock_t table;
static pthread_mutex_t journal = PTHREAD_MUTEX_INITIALIZER;

static NOINLINE void *read_then_journal(void *arg) {
    (void)arg;
    turn_wait(0);
    for (int i = 0; i < 100; i++) {
        pthread_rwlock_rdlock(&table);
        pthread_mutex_lock(&journal);
        pthread_mutex_unlock(&journal);
        pthread_rwlock_unlock(&table);
    }
    turn_pass();
    return NULL;
}

static NOINLINE void *journal_then_read(void *arg) {
    (void)arg;
    turn_wait(1);
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&journal);
        pthread_rwlock_rdlock(&table);
        pthread_rwlock_unlock(&table);
        pthread_mutex_unlock(&journal);
    }
    turn_pass();
    return NULL;
}

static NOINLINE void *writer(void *arg) {
    (void)arg;
    turn_wait(2);
    for (int i = 0; i < 100; i++) {
        pthread_rwlock_wrlock(&table);
        pthread_rwlock_unlock(&table);
    }
    turn_pass();
    return NULL;
}

int main(int argc, char **argv) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    if (has_flag(argc, argv, "--writer-preferring"))
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&table, &attr);

    /* At the same time, taking turns: the example demonstrates the
     * prediction, not the hang. */
    pthread_t t[3] = {
        spawn("read-journal", read_then_journal, NULL),
        spawn("journal-read", journal_then_read, NULL),
        spawn("writer", writer, NULL),
    };
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    puts("rwlock_readers: done");
    return 0;
}
