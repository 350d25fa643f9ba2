/* How long this machine's CPU caches keep a process's data while the process is idle or busy elsewhere.
 *
 * Walks a random cyclic chain of cache lines over a buffer of SIZE KiB (each load depends on the one before,
 * so the walk costs one memory latency per line), then waits GAP seconds — sleeping (`nanosleep`) or spinning
 * on the clock without touching memory — and walks it again, ROUNDS times. Prints one JSON line: the walk's
 * p50 / p95 in microseconds. A walk after a gap slower than one back to back means something evicted the
 * buffer meanwhile; on a spin, that something is not this process. Run by benchmarks/cache_survival.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE 64
#define ROUNDS 200

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SIZE_KIB GAP_SECONDS sleep|spin\n", argv[0]);
        return 2;
    }
    size_t lines = (size_t)atol(argv[1]) * 1024 / LINE;
    double gap = atof(argv[2]);
    int spin = strcmp(argv[3], "spin") == 0;
    if (lines < 2) {
        fprintf(stderr, "SIZE_KIB too small\n");
        return 2;
    }
    char *buffer = aligned_alloc(4096, lines * LINE);
    size_t *order = malloc(lines * sizeof *order);
    if (!buffer || !order) return 1;
    for (size_t i = 0; i < lines; i++) order[i] = i;
    srand(1);
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < lines; i++) *(size_t *)(buffer + order[i] * LINE) = order[(i + 1) % lines] * LINE;
    double walk_us[ROUNDS];
    volatile size_t sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (gap > 0 && spin) {
            uint64_t until = now_ns() + (uint64_t)(gap * 1e9);
            while (now_ns() < until) {}
        } else if (gap > 0) {
            struct timespec s = {(time_t)gap, (long)((gap - (time_t)gap) * 1e9)};
            nanosleep(&s, NULL);
        }
        uint64_t start = now_ns();
        size_t at = 0;
        for (size_t i = 0; i < lines; i++) at = *(size_t *)(buffer + at);
        sink = at;
        walk_us[r] = (double)(now_ns() - start) / 1e3;
    }
    (void)sink;
    qsort(walk_us, ROUNDS, sizeof walk_us[0], by_value);
    printf("{\"size_kib\": %s, \"gap_s\": %g, \"wait\": \"%s\", \"walk_p50_us\": %.1f, \"walk_p95_us\": %.1f}\n",
           argv[1], gap, spin ? "spin" : "sleep", walk_us[ROUNDS / 2], walk_us[ROUNDS * 95 / 100]);
    free(buffer);
    free(order);
    return 0;
}
