/*
 * rpc_callback: a deadlock between two processes over unix stream sockets.
 *
 * The client keeps a registry behind a mutex. It calls the server over a
 * request connection; for a SYNC request the server first calls back into
 * the client over a second (callback) connection, and the client's callback
 * handler needs the registry lock to answer. A client that makes a SYNC
 * call while holding the registry lock waits for the server's reply, the
 * server waits for the callback's answer, and the callback handler waits for
 * the lock: a cycle through two processes and both directions of the unix
 * sockets between them.
 *
 *   rpc_callback --light    GET calls under the lock, SYNC calls without it:
 *                           never hangs (holdcheck predicts the deadlock)
 *   rpc_callback --stress   one SYNC call under the lock: really hangs
 *   rpc_callback --timed    a SYNC call sent without waiting for its
 *                           reply, then, 100 ms later, a GET call under the
 *                           lock that reads both replies: only time keeps
 *                           the GET from waiting behind the SYNC's callback
 *                           (`holdcheck confirm` makes it hang)
 *   --poll                  the client polls for each reply before reading it
 *   rpc_callback --no-callback
 *                           GET calls under the lock, and the server never
 *                           calls back: no deadlock (a control)
 *
 * The server is this program again, exec'd as `rpc_callback --server ADDR`.
 */
#include "common.h"
#include <poll.h>
#include <stddef.h>
#include <sys/un.h>
#include <sys/wait.h>

enum { GET = 1, SYNC = 2, CALLBACK = 3, QUIT = 4 };

struct msg {
    int type;
    int id;
    long value;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static long registry_version; /* guarded by registry_lock */

static void send_msg(int fd, int type, int id, long value) {
    struct msg m = {type, id, value};
    if (send(fd, &m, sizeof m, 0) != (ssize_t)sizeof m)
        die("send");
}

/* Returns 0 at end of stream. */
static int recv_msg(int fd, struct msg *m) {
    ssize_t n = recv(fd, m, sizeof *m, MSG_WAITALL);
    if (n < 0)
        die("recv");
    return n == (ssize_t)sizeof *m;
}

static socklen_t abstract_addr(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t len = strlen(name);
    memcpy(a->sun_path + 1, name, len); /* sun_path[0] = 0: abstract */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static int connect_to(const char *name) {
    struct sockaddr_un a;
    socklen_t len = abstract_addr(&a, name);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    for (int tries = 0; connect(fd, (struct sockaddr *)&a, len) < 0; tries++) {
        if (tries > 500)
            die("connect");
        usleep(10 * 1000);
    }
    return fd;
}

/* ---- server ------------------------------------------------------------ */

/* Asks the client something before answering a SYNC call. */
static NOINLINE long call_back(int cb_fd, int id) {
    struct msg m;
    send_msg(cb_fd, CALLBACK, id, 0);
    if (!recv_msg(cb_fd, &m))
        die("callback connection closed");
    return m.value;
}

static NOINLINE void serve(int req_fd, int cb_fd) {
    struct msg m;
    while (recv_msg(req_fd, &m) && m.type != QUIT) {
        long value = m.type == SYNC ? call_back(cb_fd, m.id) : 42;
        send_msg(req_fd, m.type, m.id, value);
    }
}

static int server_main(const char *name) {
    pthread_setname_np(pthread_self(), "rpc-server");
    struct sockaddr_un a;
    socklen_t len = abstract_addr(&a, name);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, len) < 0 || listen(lfd, 4) < 0)
        die("listen");
    /* The client connects its request connection first. */
    int req_fd = accept(lfd, NULL, NULL);
    int cb_fd = accept(lfd, NULL, NULL);
    if (req_fd < 0 || cb_fd < 0)
        die("accept");
    serve(req_fd, cb_fd);
    return 0;
}

/* ---- client ------------------------------------------------------------ */

/* The callback: answers with the registry's version, under its lock. */
static NOINLINE void answer_callback(int cb_fd, const struct msg *m) {
    pthread_mutex_lock(&registry_lock);
    long v = registry_version;
    pthread_mutex_unlock(&registry_lock);
    send_msg(cb_fd, CALLBACK, m->id, v);
}

static void *callback_handler(void *arg) {
    int cb_fd = *(int *)arg;
    struct msg m;
    while (recv_msg(cb_fd, &m))
        answer_callback(cb_fd, &m);
    return NULL;
}

static int use_poll;

static NOINLINE long rpc(int req_fd, int type, int id) {
    struct msg m;
    send_msg(req_fd, type, id, 0);
    if (use_poll) {
        struct pollfd p = {.fd = req_fd, .events = POLLIN};
        if (poll(&p, 1, -1) != 1)
            die("poll");
    }
    if (!recv_msg(req_fd, &m))
        die("server closed the connection");
    return m.value;
}

/* Refreshes the registry from the server, holding its lock throughout. */
static NOINLINE void refresh_registry(int req_fd, int type, int id) {
    pthread_mutex_lock(&registry_lock);
    registry_version += rpc(req_fd, type, id);
    pthread_mutex_unlock(&registry_lock);
}

/* --timed: a GET under the lock, its reply read after the earlier call's. */
static NOINLINE void refresh_pipelined(int req_fd, int id) {
    struct msg m;
    pthread_mutex_lock(&registry_lock);
    send_msg(req_fd, GET, id, 0);
    do {
        if (!recv_msg(req_fd, &m))
            die("server closed the connection");
    } while (m.id != id);
    registry_version += m.value;
    pthread_mutex_unlock(&registry_lock);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--server") == 0)
        return server_main(argv[2]);
    int stress = has_flag(argc, argv, "--stress");
    int timed = has_flag(argc, argv, "--timed");
    int no_callback = has_flag(argc, argv, "--no-callback");
    use_poll = has_flag(argc, argv, "--poll");
    if (!stress && !no_callback && !timed && !has_flag(argc, argv, "--light")) {
        fprintf(stderr, "usage: rpc_callback --light | --stress | --timed | --no-callback\n");
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "holdcheck-rpc-%d", (int)getpid());

    pid_t server = fork();
    if (server < 0)
        die("fork");
    if (server == 0) {
        execl("/proc/self/exe", argv[0], "--server", name, (char *)NULL);
        die("exec");
    }
    int req_fd = connect_to(name);
    int cb_fd = connect_to(name);
    printf("rpc_callback: client %d, server %d\n", (int)getpid(), (int)server);
    fflush(stdout);
    pthread_t cb = spawn("cb-handler", callback_handler, &cb_fd);
    pthread_setname_np(pthread_self(), "rpc-caller");

    if (stress) {
        refresh_registry(req_fd, SYNC, 1); /* never returns */
    } else if (timed) {
        send_msg(req_fd, SYNC, 1, 0); /* its reply is read below */
        usleep(100 * 1000);
        refresh_pipelined(req_fd, 2);
    } else {
        for (int i = 0; i < 20; i++) {
            refresh_registry(req_fd, GET, 2 * i);
            rpc(req_fd, no_callback ? GET : SYNC, 2 * i + 1);
        }
    }
    send_msg(req_fd, QUIT, 0, 0);
    shutdown(cb_fd, SHUT_RD);
    pthread_join(cb, NULL);
    int status;
    waitpid(server, &status, 0);
    printf("rpc_callback: registry version %ld\n", registry_version);
    return 0;
}
