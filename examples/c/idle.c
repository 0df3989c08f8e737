/*
 * idle: a healthy program that waits a lot. A server thread sits in recv()
 * on a unix socket holding no lock, another waits on a condition variable,
 * a third sleeps holding nothing, for longer than the stall threshold the
 * tests use; then main wakes them all and the program ends. Nothing of this
 * is a stall, a stalled call or a deadlock.
 */
#include "common.h"
#include <time.h>

static int sv[2];
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go;

static void *server(void *arg) {
    (void)arg;
    char buf[16];
    if (recv(sv[1], buf, sizeof buf, 0) < 0)
        die("recv");
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    while (!go)
        pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 2000;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        die("socketpair");
    pthread_t s = spawn("idle-server", server, NULL);
    pthread_t w = spawn("cond-waiter", waiter, NULL);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    if (send(sv[0], "wake", 4, 0) < 0)
        die("send");
    pthread_join(s, NULL);
    pthread_join(w, NULL);
    puts("idle: done");
    return 0;
}
