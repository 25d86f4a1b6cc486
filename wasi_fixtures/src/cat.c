/* cat: copy stdin to stdout byte for byte, exit 0. */
#include <errno.h>
#include <unistd.h>

static char buf[65536];

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (write_all(1, buf, (size_t)r) != 0) return 1;
    }
    return 0;
}
