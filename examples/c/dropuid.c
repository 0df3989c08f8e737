/*
 * dropuid: a daemon whose worker process gives up root: the worker (a
 * fork child, whose trace is not open yet) calls setuid to nobody (65534),
 * then takes two locks in both orders from two threads, one after the
 * other (never hangs). Its trace must still be written: the directory
 * `run` made for it is root's alone.
 *
 * With --exec PROG, the worker then executes PROG as nobody: a program
 * that cannot create its trace there, named as untraced.
 *
 * Prints "dropuid: ok" (as nobody), or "dropuid: not root" (nothing
 * changed).
 */
#include "common.h"
#include <sys/wait.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;

static void *ab(void *arg) {
    (void)arg;
    pthread_mutex_lock(&a);
    pthread_mutex_lock(&b);
    pthread_mutex_unlock(&b);
    pthread_mutex_unlock(&a);
    return NULL;
}

static void *ba(void *arg) {
    (void)arg;
    pthread_mutex_lock(&b);
    pthread_mutex_lock(&a);
    pthread_mutex_unlock(&a);
    pthread_mutex_unlock(&b);
    return NULL;
}

int main(int argc, char **argv) {
    int root = geteuid() == 0;
    pid_t worker = fork();
    if (worker < 0)
        die("fork");
    if (worker == 0) {
        if (root && setuid(65534) != 0)
            die("setuid");
        pthread_join(spawn("first", ab, NULL), NULL);
        pthread_join(spawn("second", ba, NULL), NULL);
        if (argc > 2 && strcmp(argv[1], "--exec") == 0) {
            execv(argv[2], &argv[2]);
            die("execv");
        }
        _exit(0);
    }
    int status;
    if (waitpid(worker, &status, 0) != worker || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    puts(root ? "dropuid: ok" : "dropuid: not root");
    return 0;
}
