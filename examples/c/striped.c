/*
 * striped: a table guarded by 16 lock stripes, and two threads that each
 * hold two stripes at once (moving an entry from one slot to another).
 *
 *   striped            "up" takes stripe i, then stripe i+1; "down" takes
 *                      stripe j, then stripe j-1. Their pairs are disjoint,
 *                      so this run never hangs, and no pair is ever taken
 *                      both ways: only the stripes' class shows the
 *                      inversion (another run, "up" on 3,4 while "down" is
 *                      on 4,3, deadlocks). holdcheck predicts it, as
 *                      lockdep does.
 *   striped --ordered  both take the lower-addressed stripe of a pair first,
 *                      the discipline that makes such a table safe: silent.
 *   striped --heap     the stripes are heap objects made by stripe_new():
 *                      their class is that init call.
 */
#include "common.h"

#define STRIPES 16

static pthread_mutex_t stripes[STRIPES];
static pthread_mutex_t *stripe[STRIPES];
static int ordered;

static NOINLINE pthread_mutex_t *stripe_new(void) {
    pthread_mutex_t *m = malloc(sizeof *m);
    if (!m)
        die("malloc");
    pthread_mutex_init(m, NULL);
    return m;
}

/* Moves an entry from slot `from` to slot `to`, holding both stripes. */
static NOINLINE void move_entry(int from, int to) {
    pthread_mutex_t *first = stripe[from], *second = stripe[to];
    if (ordered && second < first) {
        first = stripe[to];
        second = stripe[from];
    }
    pthread_mutex_lock(first);
    pthread_mutex_lock(second);
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
}

static void *up(void *arg) {
    (void)arg;
    for (int round = 0; round < 100; round++)
        for (int i = 0; i < STRIPES / 2; i += 2)
            move_entry(i, i + 1);
    return NULL;
}

static void *down(void *arg) {
    (void)arg;
    for (int round = 0; round < 100; round++)
        for (int j = STRIPES - 1; j >= STRIPES / 2; j -= 2)
            move_entry(j, j - 1);
    return NULL;
}

int main(int argc, char **argv) {
    ordered = has_flag(argc, argv, "--ordered");
    int heap = has_flag(argc, argv, "--heap");
    for (int i = 0; i < STRIPES; i++) {
        if (heap) {
            stripe[i] = stripe_new();
        } else {
            pthread_mutex_init(&stripes[i], NULL);
            stripe[i] = &stripes[i];
        }
    }
    pthread_t a = spawn("up", up, NULL);
    pthread_t b = spawn("down", down, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    puts("striped: done");
    return 0;
}
