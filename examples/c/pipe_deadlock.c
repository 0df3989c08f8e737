/*
 * pipe_deadlock: a mutex held across write() into a pipe whose only reader
 * must take that mutex for every chunk it reads. When the pipe is full, the
 * writer sleeps in the kernel holding the mutex and the reader waits for the
 * mutex: a deadlock through a pipe.
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

static void *writer(void *arg) {
    (void)arg;
    static char big[TOTAL];
    memset(big, 'x', sizeof big);
    flush_log(big, sizeof big);
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

int main(void) {
    if (pipe(fds) < 0)
        die("pipe");
    pthread_t r = spawn("log-reader", reader, NULL);
    pthread_t w = spawn("log-writer", writer, NULL);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    printf("pipe_deadlock: %ld bytes\n", consumed);
    return 0;
}
