/*
 * supervisor: a parent that waits for its worker child while holding the
 * job table's lock, while its log thread, which drains the child's output
 * pipe, takes that lock for every line. A child whose output fills the pipe
 * blocks in write() and never exits; the parent never returns from
 * waitpid(); the log thread never gets the lock: a deadlock through a
 * process exit and a pipe.
 *
 *   supervisor --light    the child writes a few lines (they fit in the
 *                         pipe): never hangs (holdcheck predicts it)
 *   supervisor --stress   the child writes 64 MB: really hangs
 *   supervisor --stress --any-child
 *                         the same, the parent waiting with wait(): for
 *                         any child, of which it has one
 */
#include "common.h"
#include <sys/wait.h>

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static long lines_logged; /* guarded by job_lock */
static int any_child;

static NOINLINE void log_line(const char *line) {
    pthread_mutex_lock(&job_lock);
    lines_logged++;
    pthread_mutex_unlock(&job_lock);
    (void)line;
}

static void *log_main(void *arg) {
    int fd = *(int *)arg;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        log_line(buf);
    return NULL;
}

static NOINLINE void run_worker(int out, int lines) {
    char line[128];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < lines; i++)
        if (write(out, line, sizeof line) != (ssize_t)sizeof line)
            die("write");
}

/* Waits for the job to end, with the job table locked. */
static NOINLINE void finish_job(pid_t child) {
    pthread_mutex_lock(&job_lock);
    int status;
    if ((any_child ? wait(&status) : waitpid(child, &status, 0)) < 0)
        die("waitpid");
    pthread_mutex_unlock(&job_lock);
}

int main(int argc, char **argv) {
    int stress = has_flag(argc, argv, "--stress");
    any_child = has_flag(argc, argv, "--any-child");
    if (!stress && !has_flag(argc, argv, "--light")) {
        fprintf(stderr, "usage: supervisor --light | --stress\n");
        return 2;
    }
    int p[2];
    if (pipe(p) < 0)
        die("pipe");
    pthread_t logger = spawn("log-reader", log_main, &p[0]);
    for (int job = 0; job < (stress ? 1 : 3); job++) {
        pid_t child = fork();
        if (child < 0)
            die("fork");
        if (child == 0) {
            pthread_setname_np(pthread_self(), "worker");
            run_worker(p[1], stress ? 512 * 1024 : 4);
            _exit(0);
        }
        /* Let the log thread read a line or two first. */
        usleep(20 * 1000);
        finish_job(child);
    }
    close(p[1]);
    pthread_join(logger, NULL);
    printf("supervisor: %ld lines logged\n", lines_logged);
    return 0;
}
