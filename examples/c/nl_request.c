/*
 * nl_request: incident 000 (a netlink recv that never returns). A client
 * thread sends a request to a netlink port and waits in recvfrom() for the
 * reply; the server thread that owns the port drops the request. The client
 * waits for ever: a stalled call. The server, idle in recv holding nothing,
 * is normal and must not be reported.
 */
#include "common.h"

static unsigned server_port;

static void *server(void *arg) {
    int fd = *(int *)arg;
    char buf[256];
    for (;;) /* takes requests, never answers */
        if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR)
            die("recv");
    return NULL;
}

static NOINLINE void query_metrics(int fd) {
    struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = server_port};
    char req[64] = "GET metrics", reply[256];
    if (sendto(fd, req, sizeof req, 0, (struct sockaddr *)&to, sizeof to) < 0)
        die("sendto");
    if (recvfrom(fd, reply, sizeof reply, 0, NULL, NULL) < 0) /* never returns */
        die("recvfrom");
}

static void *client(void *arg) {
    (void)arg;
    query_metrics(nl_socket());
    return NULL;
}

int main(void) {
    int srv = nl_socket();
    server_port = nl_port(srv);
    pthread_t s = spawn("nl-server", server, &srv);
    pthread_t c = spawn("metrics-client", client, NULL);
    pthread_join(c, NULL);
    pthread_join(s, NULL);
    return 0;
}
