/*
 * interrupt: threads blocked in calls that a ptrace stop interrupts. After
 * a stop (a debugger's attach, a stack taken with one) these return EINTR
 * to the program instead of restarting (signal(7)): epoll_wait, recv on a
 * socket with SO_RCVTIMEO, sigwaitinfo and semop. Each holds a lock that
 * a waiter thread wants, so inspect reports one stall per call, with the
 * root's stack; each prints "EINTR <call>" if its call is ever interrupted.
 *
 * The epoll thread's function is built without frame-pointer omission
 * (its CFI needs the frame pointer, which a blocked thread's registers in
 * /proc do not give).
 */
#include "common.h"
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/time.h>

static pthread_mutex_t epoll_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t recv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sem_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t locked;

static void interrupted(const char *call) {
    printf("EINTR %s\n", call);
    fflush(stdout);
}

static NOINLINE __attribute__((optimize("no-omit-frame-pointer"))) void *epoller_main(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev;
    pthread_mutex_lock(&epoll_lock);
    pthread_barrier_wait(&locked);
    for (;;)
        if (epoll_wait(ep, &ev, 1, -1) < 0 && errno == EINTR)
            interrupted("epoll_wait");
    return NULL;
}

static NOINLINE void *receiver_main(void *arg) {
    (void)arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair");
    struct timeval tv = {3600, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_mutex_lock(&recv_lock);
    pthread_barrier_wait(&locked);
    char c;
    for (;;)
        if (recv(sv[0], &c, 1, 0) < 0 && errno == EINTR)
            interrupted("recv");
    return NULL;
}

static NOINLINE void *sigwaiter_main(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_mutex_lock(&sig_lock);
    pthread_barrier_wait(&locked);
    for (;;)
        if (sigwaitinfo(&set, NULL) < 0 && errno == EINTR)
            interrupted("sigwaitinfo");
    return NULL;
}

static NOINLINE void *semwaiter_main(void *arg) {
    (void)arg;
    int id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    if (id < 0)
        die("semget");
    struct sembuf down = {0, -1, 0};
    pthread_mutex_lock(&sem_lock);
    pthread_barrier_wait(&locked);
    for (;;)
        if (semop(id, &down, 1) < 0 && errno == EINTR)
            interrupted("semop");
    return NULL;
}

static void *waiter_main(void *arg) {
    pthread_mutex_lock(arg); /* held for ever */
    return NULL;
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* for sigwaitinfo */
    pthread_barrier_init(&locked, NULL, 5);
    spawn("epoller", epoller_main, NULL);
    spawn("receiver", receiver_main, NULL);
    spawn("sigwaiter", sigwaiter_main, NULL);
    spawn("semwaiter", semwaiter_main, NULL);
    pthread_barrier_wait(&locked);
    spawn("waiter", waiter_main, &epoll_lock);
    spawn("waiter", waiter_main, &recv_lock);
    spawn("waiter", waiter_main, &sig_lock);
    spawn("waiter", waiter_main, &sem_lock);
    puts("interrupt: ready");
    fflush(stdout);
    for (;;)
        pause();
}
