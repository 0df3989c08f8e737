/*
 * nonblocking: warnd's pattern, fixed. The sender still holds the write
 * lock while it sends, but with MSG_DONTWAIT (and, for the second socket,
 * O_NONBLOCK): a full queue makes the send fail with EAGAIN instead of
 * sleeping, so the lock is never held across a wait. Nothing to report.
 */
#include "common.h"
#include <fcntl.h>
#include <time.h>

#define MESSAGES 200

static pthread_rwlock_t table = PTHREAD_RWLOCK_INITIALIZER;
static unsigned port;
static int received, dropped;

static void send_locked(int fd, int flags, int seq) {
    struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
    char msg[64];
    snprintf(msg, sizeof msg, "msg %d", seq);
    pthread_rwlock_wrlock(&table);
    if (sendto(fd, msg, sizeof msg, flags, (struct sockaddr *)&to, sizeof to) < 0)
        dropped++;
    pthread_rwlock_unlock(&table);
}

static void *sender(void *arg) {
    (void)arg;
    int fd = nl_socket();
    int nb = nl_socket();
    fcntl(nb, F_SETFL, fcntl(nb, F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < MESSAGES; i++) {
        send_locked(i % 2 ? nb : fd, i % 2 ? 0 : MSG_DONTWAIT, i);
        struct timespec pause = {0, 100 * 1000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void *receiver(void *arg) {
    int fd = *(int *)arg;
    char buf[64];
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (n > 0) {
            pthread_rwlock_wrlock(&table);
            received++;
            pthread_rwlock_unlock(&table);
        } else if (received + dropped >= MESSAGES || now.tv_sec > deadline.tv_sec + 5) {
            return NULL;
        } else {
            struct timespec pause = {0, 50 * 1000};
            nanosleep(&pause, NULL);
        }
    }
}

int main(void) {
    int rx = nl_socket();
    port = nl_port(rx);
    pthread_t r = spawn("receiver", receiver, &rx);
    pthread_t s = spawn("sender", sender, NULL);
    pthread_join(s, NULL);
    pthread_join(r, NULL);
    printf("nonblocking: %d received, %d dropped\n", received, dropped);
    return 0;
}
