/*
 * The floor of any LD_PRELOAD tool: a preload whose hooks only forward to
 * glibc, for the calls lockbench's cases make that the shim interposes.
 * holdcheck-bench runs lockbench under it beside the native and shim runs,
 * so each micro budget can be read against what interposing alone costs
 * (a call through one more function and one indirect call into glibc).
 * Each real function is resolved once, at its first call.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sys/socket.h>

#define FWD(ret, name, params, args)                                           \
    ret name params {                                                          \
        static ret(*real) params;                                              \
        if (!real)                                                             \
            real = (ret(*) params)dlsym(RTLD_NEXT, #name);                     \
        return real args;                                                      \
    }

FWD(int, pthread_mutex_lock, (pthread_mutex_t * m), (m))
FWD(int, pthread_mutex_trylock, (pthread_mutex_t * m), (m))
FWD(int, pthread_mutex_unlock, (pthread_mutex_t * m), (m))
FWD(int, pthread_mutex_init, (pthread_mutex_t * m, const pthread_mutexattr_t *a), (m, a))
FWD(int, pthread_mutex_destroy, (pthread_mutex_t * m), (m))
FWD(int, pthread_rwlock_rdlock, (pthread_rwlock_t * l), (l))
FWD(int, pthread_rwlock_wrlock, (pthread_rwlock_t * l), (l))
FWD(int, pthread_rwlock_unlock, (pthread_rwlock_t * l), (l))
FWD(int, pthread_cond_signal, (pthread_cond_t * c), (c))
FWD(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags))
FWD(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags))
