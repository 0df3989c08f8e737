/*
 * call_again: a client's calls made again with no lock held, whose waits
 * the shim leaves published after they return (the hook ends in a jump to
 * the call); the watchdog believes such a wait only while /proc shows the
 * thread in that call.
 *
 *   call_again            the client asks a server ROUNDS questions over a
 *                         socket pair (send, then recv of the answer),
 *                         then asks once more and the server never
 *                         answers: a stalled call (a recv waiting for a
 *                         reply), itself a call made again. The server,
 *                         idle in recv holding nothing, is normal.
 *   call_again --after    the same questions, all answered; then the
 *                         client takes a mutex and sleeps 2 s holding it
 *                         while another thread waits for it: a stall whose
 *                         root sleeps, not in the recv it made last (and
 *                         no stalled call). Ends by itself.
 *
 * Prints "call_again: ok" at the end of --after.
 */
#include "common.h"
#include <time.h>

enum { ROUNDS = 1000 };

static int sp[2];
static int after;
static pthread_mutex_t table = PTHREAD_MUTEX_INITIALIZER;
static atomic_int table_taken;

static void *server(void *arg) {
    (void)arg;
    char c;
    for (int i = 0;; i++) {
        if (recv(sp[1], &c, 1, 0) != 1)
            die("recv");
        /* Not a call the shim follows (it cannot block): the server's
         * next recv is not one waiting for a reply to it. */
        if (i < ROUNDS && send(sp[1], &c, 1, MSG_DONTWAIT) != 1)
            die("send");
    }
    return NULL;
}

static NOINLINE void ask(void) {
    char c = 'q';
    if (send(sp[0], &c, 1, 0) != 1 || recv(sp[0], &c, 1, 0) != 1)
        die("ask");
}

static NOINLINE void hold_table_asleep(void) {
    pthread_mutex_lock(&table);
    atomic_store(&table_taken, 1);
    struct timespec two = {2, 0};
    nanosleep(&two, NULL);
    pthread_mutex_unlock(&table);
}

static void *client(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        ask();
    if (after)
        hold_table_asleep();
    else
        ask(); /* never answered */
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    while (!atomic_load(&table_taken))
        sched_yield();
    pthread_mutex_lock(&table);
    pthread_mutex_unlock(&table);
    return NULL;
}

int main(int argc, char **argv) {
    after = argc > 1 && strcmp(argv[1], "--after") == 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        die("socketpair");
    spawn("server", server, NULL);
    pthread_t c = spawn("client", client, NULL);
    if (after) {
        pthread_t w = spawn("table-waiter", waiter, NULL);
        pthread_join(w, NULL);
    }
    pthread_join(c, NULL);
    printf("call_again: ok\n");
    return 0;
}
