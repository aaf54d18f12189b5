// LD_PRELOAD library for scripts/bench: counts malloc/calloc/realloc calls of a process and
// writes the running total to $MALLOC_COUNT_FILE every 20 ms, so the benchmark can read the
// allocations made during a load window. Built and used by scripts/bench only.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static atomic_long allocations;

void *malloc(size_t size) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_realloc(pointer, size); }

static void *reporter(void *path) {
    struct timespec interval = {0, 20 * 1000 * 1000};
    char temporary[4096], line[32];
    snprintf(temporary, sizeof temporary, "%s.tmp", (const char *)path);
    for (;;) {  // plain system calls: the reporter itself must not allocate
        int length = snprintf(line, sizeof line, "%ld\n", atomic_load(&allocations));
        int file = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (file >= 0) {
            if (write(file, line, length) == length) rename(temporary, path);
            close(file);
        }
        nanosleep(&interval, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    // The reporter must never take a signal meant for the process (SIGTERM would kill it by
    // default while the program's own threads block it): it starts with every signal blocked.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pthread_t thread;
    pthread_create(&thread, NULL, reporter, (void *)path);
    pthread_detach(thread);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
}
