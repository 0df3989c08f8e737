/*
 * launcher: starts another program as a child and waits for it, the way
 * daemons start helpers.
 *
 *   launcher [--spawn] [--clear-env] PROGRAM [ARGS...]
 *
 *   default       fork, then execv in the child
 *   --spawn       posix_spawn
 *   --vfork       vfork, then execve in the child
 *   --clear-env   start it with an empty environment (it escapes LD_PRELOAD)
 *
 * Prints "launcher: child PID" and exits with the child's status.
 */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    int spawn_it = 0, clear_env = 0, use_vfork = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--spawn") == 0)
            spawn_it = 1;
        else if (strcmp(argv[i], "--clear-env") == 0)
            clear_env = 1;
        else if (strcmp(argv[i], "--vfork") == 0)
            use_vfork = 1;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: launcher [--spawn] [--clear-env] PROGRAM [ARGS...]\n");
        return 2;
    }
    char *empty[] = {NULL};
    char **env = clear_env ? empty : environ;
    pid_t pid;
    if (spawn_it) {
        int rc = posix_spawn(&pid, argv[i], NULL, NULL, &argv[i], env);
        check(rc, "posix_spawn");
    } else if (use_vfork) {
        pid = vfork();
        if (pid < 0)
            die("vfork");
        if (pid == 0) {
            execve(argv[i], &argv[i], env);
            _exit(127);
        }
    } else {
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            execve(argv[i], &argv[i], env);
            die("execve");
        }
    }
    printf("launcher: child %d\n", (int)pid);
    fflush(stdout);
    int status;
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
