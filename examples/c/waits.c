/*
 * waits: a lock held across a wait that only another party ends, when that
 * party needs the lock first. The waits are pthread_join (the thread must
 * end) and sem_wait (the poster must post).
 *
 *   waits join          main holds the index lock while it joins the
 *                       indexer, which takes that lock for its last batch:
 *                       here the indexer is done with it first, so the run
 *                       ends; the cycle is in it.
 *   waits join-hang     main takes the lock before the indexer's last
 *                       batch: hangs for ever.
 *   waits join-clean    main joins with the lock released: nothing to
 *                       report.
 *   waits sem           the consumer holds the cache lock across sem_wait;
 *                       the producer takes that lock before each post:
 *                       here every post comes first, so nothing hangs.
 *   waits sem-hang      the consumer waits for a post while the producer
 *                       waits for the lock: hangs for ever.
 *   waits sem-clean     the producer posts without the lock: the wait is
 *                       no cycle (a lock held across a wait, no more).
 *   waits accept-hang   main listens on a loopback TCP port (printed) and
 *                       waits in accept() holding the session lock, which
 *                       the session thread waits for: a stall, for ever.
 *   waits accept-idle   the same server holding no lock: an idle server.
 *   waits join-recv     main joins the nl-worker, which waits in recvfrom()
 *                       on its netlink port for a message nobody sends:
 *                       no lock anywhere, and it never ends.
 *   waits barrier-hang  main holds the config lock while it waits at the
 *                       start line for the worker, which takes that lock
 *                       on its way there: hangs for ever.
 *   waits barrier-shared-hang  the same at a process-shared barrier, which
 *                       another process might reach.
 *   waits barrier-sleep main waits at the start line holding the lock; the
 *                       worker, which never takes it, sleeps an hour
 *                       before it arrives: no deadlock.
 */
#include "common.h"
#include <netinet/in.h>
#include <semaphore.h>

static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t ready;
static int hang, clean;
static long indexed, cached;

static NOINLINE void index_batch(void) {
    pthread_mutex_lock(&index_lock);
    indexed++;
    pthread_mutex_unlock(&index_lock);
}

static void *indexer_main(void *arg) {
    (void)arg;
    turn_wait(1);
    index_batch();
    if (!hang)
        turn_pass(); /* 2: done with the lock */
    return NULL;
}

static NOINLINE void finish_indexing(pthread_t indexer) {
    pthread_mutex_lock(&index_lock);
    if (hang)
        turn_pass(); /* 1: the indexer's last batch, under our lock */
    if (clean)
        pthread_mutex_unlock(&index_lock);
    pthread_join(indexer, NULL);
    if (!clean)
        pthread_mutex_unlock(&index_lock);
}

static int join_mode(void) {
    pthread_t indexer = spawn("indexer", indexer_main, NULL);
    if (!hang) {
        turn_pass(); /* 1 */
        turn_wait(2);
    }
    finish_indexing(indexer);
    printf("waits: indexed %ld\n", indexed);
    return 0;
}

static NOINLINE void produce(void) {
    if (!clean) {
        pthread_mutex_lock(&cache_lock);
        cached++;
        pthread_mutex_unlock(&cache_lock);
    }
    sem_post(&ready);
}

static NOINLINE void consume(void) {
    pthread_mutex_lock(&cache_lock);
    sem_wait(&ready);
    cached--;
    pthread_mutex_unlock(&cache_lock);
}

static void *producer_main(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++)
        produce();
    turn_pass(); /* 1: three posts made */
    if (hang) {
        turn_wait(2);
        produce(); /* waits for the lock the consumer holds */
    }
    return NULL;
}

static int sem_mode(void) {
    check(sem_init(&ready, 0, 0), "sem_init");
    pthread_t producer = spawn("producer", producer_main, NULL);
    turn_wait(1);
    for (int i = 0; i < 3; i++)
        consume();
    if (hang) {
        pthread_mutex_lock(&cache_lock);
        turn_pass(); /* 2 */
        sem_wait(&ready); /* the post needs the lock we hold */
        pthread_mutex_unlock(&cache_lock);
    }
    pthread_join(producer, NULL);
    printf("waits: cached %ld\n", cached);
    return 0;
}

static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;

static void *session_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&session_lock); /* held by main, in accept() */
    pthread_mutex_unlock(&session_lock);
    return NULL;
}

static int accept_mode(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0)
        die("listen");
    printf("waits: listening on port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_t session;
    if (hang) {
        pthread_mutex_lock(&session_lock);
        pthread_create(&session, NULL, session_main, NULL);
        pthread_setname_np(session, "session");
    }
    int c = accept(l, NULL, NULL); /* nobody connects */
    if (hang)
        pthread_mutex_unlock(&session_lock);
    return c < 0;
}

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start_line;
static long configured;

static int sleepy;

static void *worker_main(void *arg) {
    (void)arg;
    turn_wait(1);
    if (sleepy) {
        sleep(3600);
    } else {
        pthread_mutex_lock(&config_lock); /* held by main, at the barrier */
        configured++;
        pthread_mutex_unlock(&config_lock);
    }
    pthread_barrier_wait(&start_line);
    return NULL;
}

static int barrier_mode(int shared) {
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    if (shared)
        pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&start_line, &a, 2);
    pthread_t worker = spawn("worker", worker_main, NULL);
    pthread_mutex_lock(&config_lock);
    turn_pass(); /* 1 */
    pthread_barrier_wait(&start_line); /* the worker needs the lock first */
    pthread_mutex_unlock(&config_lock);
    pthread_join(worker, NULL);
    printf("waits: configured %ld\n", configured);
    return 0;
}

static NOINLINE void *nl_worker_main(void *arg) {
    (void)arg;
    int fd = nl_socket();
    char buf[256];
    if (recvfrom(fd, buf, sizeof buf, 0, NULL, NULL) < 0) /* nothing comes */
        die("recvfrom");
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "join";
    hang = strstr(mode, "-hang") != NULL;
    clean = strstr(mode, "-clean") != NULL;
    if (strcmp(mode, "join-recv") == 0) {
        pthread_join(spawn("nl-worker", nl_worker_main, NULL), NULL);
        return 0;
    }
    if (strncmp(mode, "join", 4) == 0)
        return join_mode();
    if (strncmp(mode, "sem", 3) == 0)
        return sem_mode();
    if (strncmp(mode, "accept", 6) == 0)
        return accept_mode();
    if (strncmp(mode, "barrier", 7) == 0) {
        sleepy = strcmp(mode, "barrier-sleep") == 0;
        return barrier_mode(strcmp(mode, "barrier-shared-hang") == 0);
    }
    fprintf(stderr, "usage: waits join|join-hang|join-clean|sem|sem-hang|sem-clean|"
                    "accept-hang|accept-idle|join-recv|barrier-hang|barrier-shared-hang|"
                    "barrier-sleep\n");
    return 2;
}
