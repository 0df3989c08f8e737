/*
 * warnd: the alarm daemon of incident 001, reduced to its deadlock.
 *
 * The sender thread takes the alarm table's rwlock for writing, then
 * sendto()s the alarm to a NETLINK_USERSOCK port. The receiver thread drains
 * that port, and for every message takes the same write lock to update the
 * table. When the port's receive queue is full, the sender sleeps in
 * netlink_attachskb holding the lock, and the receiver, the only one that
 * could make room, waits for the lock: a deadlock through the kernel.
 *
 *   warnd --light    a few alarms, paced: never hangs (holdcheck still
 *                    predicts the deadlock from this run)
 *   warnd --stress   a flood into a small queue: really hangs
 *   --cli N          also start N `cli` processes (the login path) that
 *                    send to the receiver's port; under --stress they
 *                    block in sendmsg behind the deadlock
 */
#include "common.h"
#include <libgen.h>
#include <sys/wait.h>
#include <time.h>

#define ALARM_BYTES 64

static pthread_rwlock_t alarm_lock = PTHREAD_RWLOCK_INITIALIZER;
static unsigned alarm_port;          /* the receiver's netlink port id */
static int alarms_to_send = 400; /* more than the port's queue holds (256) */
static int stress;
static long alarms_seen;             /* guarded by alarm_lock */

/* The library call of the incident: fun_nl_sendto() in libfun_nl_ipc. */
static NOINLINE int fun_nl_sendto(int fd, const void *msg, size_t len, unsigned port) {
    struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = port};
    return sendto(fd, msg, len, 0, (struct sockaddr *)&to, sizeof to);
}

/* send_warn() in libwarnapi: called with the alarm table write-locked. */
static NOINLINE void send_warn(int fd, int seq) {
    char msg[ALARM_BYTES];
    snprintf(msg, sizeof msg, "alarm %d", seq);
    if (fun_nl_sendto(fd, msg, sizeof msg, alarm_port) < 0)
        die("sendto");
}

static NOINLINE void raise_alarm(int fd, int seq) {
    pthread_rwlock_wrlock(&alarm_lock);
    alarms_seen++;
    send_warn(fd, seq);
    pthread_rwlock_unlock(&alarm_lock);
}

static void *sender_main(void *arg) {
    (void)arg;
    int fd = nl_socket();
    for (int i = 0; i < alarms_to_send; i++) {
        raise_alarm(fd, i);
        if (!stress) {
            struct timespec pause = {0, 200 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    close(fd);
    return NULL;
}

/* Starts a `cli` process (next to this program) sending to the port. */
static pid_t start_cli(const char *self, int count) {
    char dir[4096], path[4200], port[16], n[16];
    snprintf(dir, sizeof dir, "%s", self);
    snprintf(path, sizeof path, "%s/cli", dirname(dir));
    snprintf(port, sizeof port, "%u", alarm_port);
    snprintf(n, sizeof n, "%d", count);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        execl(path, "cli", port, n, (char *)NULL);
        die("exec cli");
    }
    return pid;
}

/* The receiver's per-message work: update the alarm table. */
static NOINLINE void handle_warn(const char *msg) {
    pthread_rwlock_wrlock(&alarm_lock);
    alarms_seen++;
    if (stress) {
        struct timespec work = {0, 2 * 1000 * 1000};
        nanosleep(&work, NULL);
    }
    pthread_rwlock_unlock(&alarm_lock);
    (void)msg;
}

static void *receiver_main(void *arg) {
    int fd = *(int *)arg;
    char buf[ALARM_BYTES];
    for (;;) {
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, NULL, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("recvfrom");
        }
        if (strcmp(buf, "alarm -1") == 0)
            return NULL;
        handle_warn(buf);
    }
}

int main(int argc, char **argv) {
    stress = has_flag(argc, argv, "--stress");
    if (!stress && !has_flag(argc, argv, "--light")) {
        fprintf(stderr, "usage: warnd --light | --stress\n");
        return 2;
    }
    if (stress)
        alarms_to_send = 100000;

    int rx = nl_socket();
    if (stress) {
        int small = 4096; /* a queue that fills in a few messages */
        setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    alarm_port = nl_port(rx);
    printf("warnd: receiver on netlink protocol %d port %u\n", NETLINK_USERSOCK, alarm_port);
    fflush(stdout);

    int clis = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--cli") == 0)
            clis = atoi(argv[i + 1]);

    pthread_t rt = spawn("nl-receiver", receiver_main, &rx);
    pthread_t st = spawn("warn-sender", sender_main, NULL);
    pid_t cli_pids[16];
    for (int i = 0; i < clis && i < 16; i++)
        cli_pids[i] = start_cli(argv[0], stress ? 100000 : 20);
    pthread_join(st, NULL);
    for (int i = 0; i < clis && i < 16; i++)
        waitpid(cli_pids[i], NULL, 0);
    /* The last message tells the receiver to stop. */
    int fd = nl_socket();
    pthread_rwlock_wrlock(&alarm_lock);
    send_warn(fd, -1);
    pthread_rwlock_unlock(&alarm_lock);
    close(fd);
    pthread_join(rt, NULL);
    printf("warnd: %ld alarms handled\n", alarms_seen);
    return 0;
}
