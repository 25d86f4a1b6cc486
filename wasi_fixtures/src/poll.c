/* poll REQ_PATH REQ_TEXT RESP_PATH TIMEOUT_MS: write REQ_TEXT to REQ_PATH
 * (create/truncate), then check every ~5 ms until RESP_PATH exists and is
 * non-empty; print its contents to stdout and exit 0. After TIMEOUT_MS
 * without a response print "timeout" to stderr and exit 3. Usage errors
 * exit 64; I/O errors print "error: ..." to stderr and exit 1. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* Report a failed I/O step; fputs keeps printf (~20 KB) out of the binary. */
static void fail(const char *what, const char *path) {
    int e = errno;
    fputs("error: ", stderr);
    fputs(what, stderr);
    fputc(' ', stderr);
    fputs(path, stderr);
    fputs(": ", stderr);
    fputs(strerror(e), stderr);
    fputc('\n', stderr);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dump(const char *path) {
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        if (write_all(1, buf, (size_t)r) != 0) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fputs("usage: poll REQ_PATH REQ_TEXT RESP_PATH TIMEOUT_MS\n", stderr);
        return 64;
    }
    const char *req = argv[1], *text = argv[2], *resp = argv[3];
    long long timeout = atoll(argv[4]);

    int fd = open(req, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write_all(fd, text, strlen(text)) != 0) {
        fail("write", req);
        return 1;
    }
    if (close(fd) != 0) {
        fail("write", req);
        return 1;
    }

    long long deadline = now_ms() + timeout;
    for (;;) {
        struct stat st;
        if (stat(resp, &st) == 0 && st.st_size > 0) {
            if (dump(resp) != 0) {
                fail("read", resp);
                return 1;
            }
            return 0;
        }
        if (now_ms() >= deadline) {
            fputs("timeout\n", stderr);
            return 3;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
