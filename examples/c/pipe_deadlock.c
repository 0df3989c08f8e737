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
 *   pipe_deadlock --light --reused-fds
 *                   the same, with the pipe on descriptor numbers that
 *                   were a socket pair's, used and closed by fclose (in
 *                   libc, where no close is seen): the pipe must be seen
 *                   as the pipe
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

/* A socket pair, used both ways on both ends, then closed by fclose. */
static void socket_pair_used_and_fclosed(int used[2]) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        die("socketpair");
    char c = 'x';
    for (int i = 0; i < 2; i++) {
        if (send(sp[i], &c, 1, 0) != 1 || recv(sp[1 - i], &c, 1, 0) != 1)
            die("socketpair");
        used[i] = sp[i];
    }
    for (int i = 0; i < 2; i++) {
        FILE *f = fdopen(sp[i], "r+");
        if (!f || fclose(f) != 0)
            die("fdopen");
    }
}

int main(int argc, char **argv) {
    if (has_flag(argc, argv, "--subprocess"))
        return subprocess();
    int used[2] = {-1, -1};
    if (has_flag(argc, argv, "--reused-fds"))
        socket_pair_used_and_fclosed(used);
    if (pipe(fds) < 0)
        die("pipe");
    if (used[0] >= 0) {
        int same = (fds[0] == used[0] && fds[1] == used[1]) ||
                   (fds[0] == used[1] && fds[1] == used[0]);
        printf("pipe_deadlock: descriptors %s\n", same ? "reused" : "not reused");
        fflush(stdout);
    }
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
