/*
 * queuewaits: one thread's blocking-capable calls on two socket pairs,
 * A (a0 -> a1) and B (b0 -> b1), in three steady loops:
 *
 *   1. send(a0), recv(a1)                        N times
 *   2. send(b0), recv(b1)                        N times
 *   3. send(a0), recv(a1), send(b0), recv(b1)    N times
 *
 * Every loop is a call made again with nothing new after its first turn:
 * the shim's fast path. The third makes every call wait, between two of
 * its own, on the other three queues, which the shim must record though
 * its queues were all on the fast path when the order changed.
 *
 * Prints "queuewaits: A INODE B INODE" (the receiving sockets' inodes, as
 * the trace names a socket pair's queue) and "queuewaits: ok".
 */
#include "common.h"
#include <sys/socket.h>
#include <sys/stat.h>

static void pair(int sp[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        die("socketpair");
}

static unsigned long inode(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat");
    return (unsigned long)st.st_ino;
}

static void roundtrip(int s, int r) {
    char c = 'x';
    if (send(s, &c, 1, 0) != 1 || recv(r, &c, 1, 0) != 1)
        die("roundtrip");
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int a[2], b[2];
    pair(a);
    pair(b);
    printf("queuewaits: A %lu B %lu\n", inode(a[1]), inode(b[1]));
    for (long i = 0; i < n; i++)
        roundtrip(a[0], a[1]);
    for (long i = 0; i < n; i++)
        roundtrip(b[0], b[1]);
    for (long i = 0; i < n; i++) {
        roundtrip(a[0], a[1]);
        roundtrip(b[0], b[1]);
    }
    printf("queuewaits: ok\n");
    return 0;
}
