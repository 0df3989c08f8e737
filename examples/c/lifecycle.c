/*
 * lifecycle: the process events a preload library must survive. Each mode
 * prints "lifecycle <mode>: ok" and exits 0 when the program behaved as it
 * does without the shim.
 *
 *   fork     fork (and exec) from a multi-threaded process while other
 *            threads take locks and do pipe I/O (pthread_atfork takes the
 *            locks across the fork); the children lock too
 *   cancel   pthread_cancel of threads blocked in read() and in
 *            pthread_cond_wait (unwinding through the interposed calls)
 *   signal   signal handlers that take a lock while the thread they
 *            interrupt is inside interposed calls
 *   exit     threads that exit holding locks, or with pthread_exit
 *   selfpipe the self-pipe trick: a handler write()s to a pipe while the
 *            thread it interrupts allocates and locks; the program reads its
 *            own handlers back from sigaction() and signal()
 *   forkqueue a single-threaded process uses three pipes, then forks; the
 *            child takes config_lock between two reads of a pipe of its
 *            own (a drain dependency its trace must show)
 *   rawfork  a single-threaded process takes a then b, then forks by the
 *            raw system call (no fork handler runs); the child takes b
 *            then a: its trace is its own, so no process took both orders
 */
#include "common.h"
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;

static void *churn(void *arg) {
    (void)arg;
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    char c = 'x';
    do { /* at least once, however late the thread gets to run */
        pthread_mutex_lock(&a);
        pthread_mutex_lock(&b);
        if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
            die("pipe io");
        pthread_mutex_unlock(&b);
        pthread_mutex_unlock(&a);
    } while (!stop);
    close(p[0]);
    close(p[1]);
    return NULL;
}

/* A correct multi-threaded program forks with its locks in a known state:
 * taken before the fork, released on both sides after it. */
static void before_fork(void) {
    pthread_mutex_lock(&a);
    pthread_mutex_lock(&b);
}

static void after_fork(void) {
    pthread_mutex_unlock(&b);
    pthread_mutex_unlock(&a);
}

static int mode_fork(void) {
    pthread_atfork(before_fork, after_fork, after_fork);
    pthread_t t[2] = {spawn("churn-1", churn, NULL), spawn("churn-2", churn, NULL)};
    for (int i = 0; i < 40; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            /* The child: one thread, the locks released by the atfork
             * handler. */
            pthread_mutex_lock(&a);
            pthread_mutex_lock(&b);
            pthread_mutex_unlock(&b);
            pthread_mutex_unlock(&a);
            if (i % 4 == 0)
                execl("/bin/true", "true", (char *)NULL);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d failed\n", i);
            return 1;
        }
    }
    stop = 1;
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    return 0;
}

static int cancel_pipe[2];
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void unlock_a(void *arg) {
    (void)arg;
    pthread_mutex_unlock(&a);
}

static void *blocked_in_read(void *arg) {
    (void)arg;
    char c;
    if (read(cancel_pipe[0], &c, 1) >= 0) /* a cancellation point */
        return (void *)1;
    return (void *)2;
}

static void *blocked_in_cond_wait(void *arg) {
    (void)arg;
    pthread_mutex_lock(&a);
    pthread_cleanup_push(unlock_a, NULL);
    for (;;)
        pthread_cond_wait(&never, &a); /* a cancellation point */
    pthread_cleanup_pop(1);
    return NULL;
}

static int mode_cancel(void) {
    if (pipe(cancel_pipe) < 0)
        die("pipe");
    for (int i = 0; i < 20; i++) {
        pthread_t r = spawn("in-read", blocked_in_read, NULL);
        pthread_t w = spawn("in-cond-wait", blocked_in_cond_wait, NULL);
        struct timespec t = {0, 5 * 1000 * 1000};
        nanosleep(&t, NULL);
        pthread_cancel(r);
        pthread_cancel(w);
        void *rv, *wv;
        pthread_join(r, &rv);
        pthread_join(w, &wv);
        if (rv != PTHREAD_CANCELED || wv != PTHREAD_CANCELED) {
            fprintf(stderr, "not cancelled\n");
            return 1;
        }
        /* The cleanup handler released the mutex. */
        if (pthread_mutex_trylock(&a) != 0) {
            fprintf(stderr, "mutex left locked\n");
            return 1;
        }
        pthread_mutex_unlock(&a);
    }
    return 0;
}

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile long handled;

static void on_signal(int sig) {
    (void)sig;
    /* Not async-signal-safe in theory; common in practice. */
    pthread_mutex_lock(&handler_lock);
    handled++;
    pthread_mutex_unlock(&handler_lock);
}

static int mode_signal(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t = spawn("churn", churn, NULL);
    for (int i = 0; i < 2000; i++) {
        pthread_kill(t, SIGUSR1);
        if (i % 100 == 0) {
            struct timespec p = {0, 100 * 1000};
            nanosleep(&p, NULL);
        }
    }
    struct timespec p = {0, 50 * 1000 * 1000};
    nanosleep(&p, NULL);
    stop = 1;
    pthread_join(t, NULL);
    return handled > 0 ? 0 : 1;
}

static pthread_mutex_t abandoned = PTHREAD_MUTEX_INITIALIZER;

static void *exit_holding(void *arg) {
    long how = (long)arg;
    pthread_mutex_lock(&abandoned);
    pthread_mutex_lock(&b);
    pthread_mutex_unlock(&b);
    if (how)
        pthread_exit(NULL); /* leaves `abandoned` locked */
    return NULL;
}

static int mode_exit(void) {
    pthread_t t = spawn("exit-holding", exit_holding, (void *)1);
    pthread_join(t, NULL);
    if (pthread_mutex_trylock(&abandoned) != EBUSY)
        return 1;
    /* Later threads (reusing the exited one's stack and TLS) run on. */
    for (int i = 0; i < 50; i++) {
        pthread_t c = spawn("churn", churn, NULL);
        struct timespec p = {0, 200 * 1000};
        nanosleep(&p, NULL);
        stop = 1;
        pthread_join(c, NULL);
        stop = 0;
    }
    return 0;
}

static int self_pipe[2];
static volatile long pipe_bytes;

static void wake(int sig) {
    (void)sig;
    char c = 's';
    int saved = errno;
    if (write(self_pipe[1], &c, 1) < 0 && errno != EAGAIN)
        _exit(3);
    errno = saved;
}

static void *drain(void *arg) {
    (void)arg;
    char buf[64];
    ssize_t n;
    while ((n = read(self_pipe[0], buf, sizeof buf)) > 0)
        pipe_bytes += n;
    return NULL;
}

static void *allocate(void *arg) {
    (void)arg;
    while (!stop) {
        void *p = malloc(64 + (rand() & 1023));
        pthread_mutex_lock(&a);
        pthread_mutex_unlock(&a);
        free(p);
    }
    return NULL;
}

static int mode_selfpipe(void) {
    if (pipe(self_pipe) < 0)
        die("pipe");
    struct sigaction sa = {0}, back;
    sa.sa_handler = wake;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    if (sigaction(SIGUSR2, NULL, &back) != 0 || back.sa_handler != wake) {
        fprintf(stderr, "sigaction does not report the program's handler\n");
        return 1;
    }
    if (signal(SIGUSR1, wake) == SIG_ERR || signal(SIGUSR1, wake) != wake) {
        fprintf(stderr, "signal does not report the program's handler\n");
        return 1;
    }
    pthread_t r = spawn("drain", drain, NULL);
    pthread_t w = spawn("allocate", allocate, NULL);
    for (int i = 0; i < 3000; i++) {
        pthread_kill(w, i % 2 ? SIGUSR1 : SIGUSR2);
        if (i % 50 == 0) {
            struct timespec p = {0, 200 * 1000};
            nanosleep(&p, NULL);
        }
    }
    struct timespec p = {0, 50 * 1000 * 1000};
    nanosleep(&p, NULL);
    stop = 1;
    pthread_join(w, NULL);
    close(self_pipe[1]);
    pthread_join(r, NULL);
    return pipe_bytes > 0 ? 0 : 1;
}

/* One byte through the pipe p: a send and a receive that never block. */
static void through(int p[2]) {
    char c = 'x';
    if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
        die("pipe");
}

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

static int mode_rawfork(void) {
    pthread_mutex_lock(&a);
    pthread_mutex_lock(&b);
    pthread_mutex_unlock(&b);
    pthread_mutex_unlock(&a);
    pid_t child = (pid_t)syscall(SYS_fork);
    if (child < 0)
        die("fork");
    if (child == 0) {
        pthread_mutex_lock(&b);
        pthread_mutex_lock(&a);
        pthread_mutex_unlock(&a);
        pthread_mutex_unlock(&b);
        _exit(0);
    }
    int status;
    return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0
               ? 0
               : 1;
}

static int mode_forkqueue(void) {
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (pipe(p) < 0)
            die("pipe");
        through(p);
        close(p[0]);
        close(p[1]);
    }
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        int q[2];
        if (pipe(q) < 0)
            die("pipe");
        through(q);
        pthread_mutex_lock(&config_lock);
        pthread_mutex_unlock(&config_lock);
        through(q);
        exit(0);
    }
    int status;
    return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0
               ? 0
               : 1;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int rc;
    if (strcmp(mode, "fork") == 0)
        rc = mode_fork();
    else if (strcmp(mode, "cancel") == 0)
        rc = mode_cancel();
    else if (strcmp(mode, "signal") == 0)
        rc = mode_signal();
    else if (strcmp(mode, "exit") == 0)
        rc = mode_exit();
    else if (strcmp(mode, "selfpipe") == 0)
        rc = mode_selfpipe();
    else if (strcmp(mode, "rawfork") == 0)
        rc = mode_rawfork();
    else if (strcmp(mode, "forkqueue") == 0)
        rc = mode_forkqueue();
    else {
        fprintf(stderr, "usage: lifecycle fork|cancel|signal|exit|selfpipe|rawfork|forkqueue\n");
        return 2;
    }
    if (rc == 0)
        printf("lifecycle %s: ok\n", mode);
    return rc;
}
