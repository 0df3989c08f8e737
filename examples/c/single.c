/*
 * single: single-threaded programs that hang, which get no watchdog thread
 * from the shim (a second thread would cost glibc's single-thread fast
 * path); `run` sees them hang from outside. build.sh also links this one
 * statically (single_static), which no preload reaches.
 *
 *   single relock   locks its mutex again: waits for itself for ever
 *   single read     reads a pipe whose only writer is itself
 *   single child    waits for a child that does that
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

static __attribute__((noinline)) void reload_config(void) {
    pthread_mutex_lock(&config_lock); /* already held by apply_config */
    pthread_mutex_unlock(&config_lock);
}

static __attribute__((noinline)) void apply_config(void) {
    pthread_mutex_lock(&config_lock);
    reload_config();
    pthread_mutex_unlock(&config_lock);
}

static __attribute__((noinline)) void wait_for_reply(void) {
    int p[2];
    char c;
    if (pipe(p) < 0 || read(p[0], &c, 1) < 0) /* its only writer is us */
        perror("read");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "relock") == 0)
        apply_config();
    else if (strcmp(mode, "read") == 0)
        wait_for_reply();
    else if (strcmp(mode, "child") == 0) {
        if (fork() == 0) {
            wait_for_reply();
            _exit(0);
        }
        wait(NULL);
    }
    else {
        fprintf(stderr, "usage: single relock|read|child\n");
        return 2;
    }
    return 0;
}
