/*
 * pipe_deadlock: a mutex held across write() into a pipe whose only reader
 * must take that mutex for every chunk it reads. When the pipe is full, the
 * writer sleeps in the kernel holding the mutex and the reader waits for the
 * mutex: a deadlock through a pipe.
 *
 *   pipe_deadlock                   the deadlock above
 *   pipe_deadlock --light
 *                   the writer writes 4 KiB at a time, pausing between
 *                   writes, so the pipe never fills and nothing hangs
 *                   (holdcheck predicts the deadlock; `holdcheck confirm`
 *                   makes it happen)
 *   pipe_deadlock --reader-elsewhere
 *                   the writer holds the mutex in a full pipe; the pipe's
 *                   reader is blocked reading another pipe; a third thread
 *                   waits for the mutex. Stuck, but no cycle: which thread
 *                   would read the full pipe is not known from outside.
 *   pipe_deadlock --subprocess
 *                   a parent writes into its child's stdin while the child
 *                   writes into a full stdout that only the parent reads:
 *                   a deadlock of two processes, each in write().
 */
#include "common.h"

#define CHUNK 4096
#define TOTAL (1 << 20)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[2];
static long consumed;

static NOINLINE void flush_log(const char *buf, size_t n) {
    pthread_mutex_lock(&log_lock);
    size_t done = 0;
    while (done < n) { /* a full pipe blocks here, the lock held */
        ssize_t w = write(fds[1], buf + done, n - done);
        if (w < 0)
            die("write");
        done += w;
    }
    pthread_mutex_unlock(&log_lock);
}

static int light;

static void *writer(void *arg) {
    (void)arg;
    static char big[TOTAL];
    memset(big, 'x', sizeof big);
    if (light) {
        for (int i = 0; i < 100; i++) {
            flush_log(big, CHUNK);
            usleep(1000);
        }
    } else {
        flush_log(big, sizeof big);
    }
    close(fds[1]);
    return NULL;
}

static NOINLINE void account(ssize_t n) {
    pthread_mutex_lock(&log_lock);
    consumed += n;
    pthread_mutex_unlock(&log_lock);
}

static void *reader(void *arg) {
    (void)arg;
    char buf[CHUNK];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        account(n);
    return NULL;
}

static int other[2];

/* Reads a pipe nobody writes to: the reader of the full pipe is elsewhere. */
static void *reader_elsewhere(void *arg) {
    (void)arg;
    char c;
    if (read(other[0], &c, 1) < 0)
        die("read");
    return NULL;
}

static void *mutex_waiter(void *arg) {
    (void)arg;
    usleep(200 * 1000);
    account(0);
    return NULL;
}

/* Writes all of buf into fd. */
static void put(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0)
            die("write");
        buf += w;
        n -= w;
    }
}

static int subprocess(void) {
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        die("pipe");
    static char big[TOTAL];
    memset(big, 'x', sizeof big);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(in[1]);
        close(out[0]);
        put(out[1], big, sizeof big); /* answers before it reads */
        _exit(0);
    }
    close(in[0]);
    close(out[1]);
    printf("pipe_deadlock: child %d\n", (int)child);
    fflush(stdout);
    put(in[1], big, sizeof big); /* feeds before it reads */
    return 0;
}

int main(int argc, char **argv) {
    if (has_flag(argc, argv, "--subprocess"))
        return subprocess();
    if (pipe(fds) < 0)
        die("pipe");
    light = has_flag(argc, argv, "--light");
    if (has_flag(argc, argv, "--reader-elsewhere")) {
        if (pipe(other) < 0)
            die("pipe");
        pthread_t r = spawn("other-reader", reader_elsewhere, NULL);
        pthread_t w = spawn("log-writer", writer, NULL);
        pthread_t m = spawn("stats", mutex_waiter, NULL);
        pthread_join(w, NULL);
        pthread_join(m, NULL);
        pthread_join(r, NULL);
        return 0;
    }
    pthread_t r = spawn("log-reader", reader, NULL);
    pthread_t w = spawn("log-writer", writer, NULL);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    printf("pipe_deadlock: %ld bytes\n", consumed);
    return 0;
}
