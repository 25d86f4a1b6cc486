/* memhog [MIB]: allocate memory in 1 MiB chunks, touching every page, up to
 * MIB MiB (default: until malloc fails). On success prints
 * "allocated N MiB" to stdout and exits 0; if malloc returns NULL prints
 * "malloc failed after N MiB" to stderr and exits 2.
 *
 * N counts malloc calls, not linear memory: zig 0.17's libc malloc rounds a
 * 1 MiB request (plus its header) up to 2 MiB of linear memory, Debian's
 * wasi-libc (dlmalloc) to ~1 MiB. */
#include <stdio.h>
#include <stdlib.h>

#define CHUNK (1024 * 1024)
#define PAGE 4096

/* Chunks are chained through their first word so the allocations stay
 * reachable and cannot be optimised away. */
static void *volatile head;

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : -1;
    long n = 0;
    while (limit < 0 || n < limit) {
        volatile char *p = malloc(CHUNK);
        if (p == NULL) {
            fprintf(stderr, "malloc failed after %ld MiB\n", n);
            return 2;
        }
        for (size_t off = 0; off < CHUNK; off += PAGE) p[off] = (char)1;
        *(void *volatile *)p = head;
        head = (void *)p;
        n++;
    }
    printf("allocated %ld MiB\n", n);
    return 0;
}
