/* flood [BYTES]: write BYTES (default 10000000) bytes of 'x' to stdout in
 * 64 KiB writes, then "done\n" to stderr; exit 0 (1 if a write fails). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

static char buf[CHUNK];

int main(int argc, char **argv) {
    long long total = argc > 1 ? atoll(argv[1]) : 10000000LL;
    memset(buf, 'x', sizeof buf);
    while (total > 0) {
        size_t n = total > CHUNK ? CHUNK : (size_t)total;
        ssize_t w = write(1, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        total -= w;
    }
    write(2, "done\n", 5);
    return 0;
}
