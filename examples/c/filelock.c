/*
 * filelock: two processes take two file locks (flock) in opposite orders:
 * the spool lock then the index lock in one, the index lock then the spool
 * lock in the other, as two tools sharing a directory might.
 *
 *   filelock --light    one after the other: never hangs (holdcheck
 *                       predicts the deadlock between the processes)
 *   filelock --stress   at the same time: really hangs
 *   filelock --shared   both take both locks shared (LOCK_SH): never a
 *                       deadlock, whatever the order (a control)
 *   filelock --mapped   one process locks a file, maps it and closes its
 *                       descriptor (the lock stays with the mapping, as
 *                       the JVM keeps its hsperfdata file), then sleeps
 *   filelock --pidfile  one process takes a record lock (fcntl) on its
 *                       pid file for its whole run, as daemons do; under
 *                       it, it waits on a condition variable a worker
 *                       signals, then holds state_lock across a wait on
 *                       another (the one hazard: no other thread of the
 *                       process can ever wait for its record lock)
 */
#include "common.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>

static char spool[64], idx[64];

static int open_lock(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        die("open");
    return fd;
}

/* Takes `first` then `second`, signalling `ready` in between and waiting
 * for `go` (the other process holding its first lock) when racing. */
static NOINLINE void lock_both(const char *first, const char *second, int how, int ready, int go) {
    int a = open_lock(first), b = open_lock(second);
    if (flock(a, how) < 0)
        die("flock");
    if (ready >= 0) {
        char c = 1;
        if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
            die("sync");
    }
    if (flock(b, how) < 0)
        die("flock");
    flock(b, LOCK_UN);
    flock(a, LOCK_UN);
    close(b);
    close(a);
}

/* --mapped: a lock no descriptor names any more. */
static int mapped(void) {
    int fd = open_lock(spool);
    if (ftruncate(fd, 4096) < 0 || flock(fd, LOCK_EX) < 0)
        die("flock");
    void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    close(fd);
    printf("filelock: %s locked and mapped\n", spool);
    fflush(stdout);
    sleep(600);
    unlink(spool);
    return 0;
}

/* --pidfile */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int ready, done;

static void *pidfile_worker(void *arg) {
    (void)arg;
    usleep(50000);
    pthread_mutex_lock(&wait_lock);
    ready = 1;
    pthread_cond_signal(&ready_cond);
    pthread_mutex_unlock(&wait_lock);
    usleep(50000);
    pthread_mutex_lock(&wait_lock);
    done = 1;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&wait_lock);
    return NULL;
}

static int pidfile(void) {
    int fd = open_lock(spool);
    struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &whole) < 0)
        die("fcntl");
    pthread_t t = spawn("worker", pidfile_worker, NULL);
    pthread_mutex_lock(&wait_lock);
    while (!ready)
        pthread_cond_wait(&ready_cond, &wait_lock);
    pthread_mutex_unlock(&wait_lock);
    pthread_mutex_lock(&state_lock);
    pthread_mutex_lock(&wait_lock);
    while (!done)
        pthread_cond_wait(&done_cond, &wait_lock);
    pthread_mutex_unlock(&wait_lock);
    pthread_mutex_unlock(&state_lock);
    pthread_join(t, NULL);
    unlink(spool);
    close(fd);
    printf("filelock: done\n");
    return 0;
}

int main(int argc, char **argv) {
    int stress = has_flag(argc, argv, "--stress");
    int shared = has_flag(argc, argv, "--shared");
    if (!stress && !shared && !has_flag(argc, argv, "--light") &&
        !has_flag(argc, argv, "--mapped") && !has_flag(argc, argv, "--pidfile")) {
        fprintf(stderr, "usage: filelock --light | --stress | --shared | --mapped | --pidfile\n");
        return 2;
    }
    snprintf(spool, sizeof spool, "/tmp/holdcheck-filelock-%d-spool", (int)getpid());
    snprintf(idx, sizeof idx, "/tmp/holdcheck-filelock-%d-index", (int)getpid());
    if (has_flag(argc, argv, "--mapped"))
        return mapped();
    if (has_flag(argc, argv, "--pidfile"))
        return pidfile();
    int how = shared ? LOCK_SH : LOCK_EX;
    /* parent → child and child → parent pipes, used only under --stress. */
    int p2c[2], c2p[2];
    if (pipe(p2c) < 0 || pipe(c2p) < 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        pthread_setname_np(pthread_self(), "indexer");
        lock_both(spool, idx, how, stress ? c2p[1] : -1, p2c[0]);
        _exit(0);
    }
    pthread_setname_np(pthread_self(), "compactor");
    if (!stress)
        waitpid(child, NULL, 0);
    lock_both(idx, spool, how, stress ? p2c[1] : -1, c2p[0]);
    if (stress)
        waitpid(child, NULL, 0);
    unlink(spool);
    unlink(idx);
    printf("filelock: done\n");
    return 0;
}
