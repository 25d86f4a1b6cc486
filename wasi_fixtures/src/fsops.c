/* fsops: a scriptable file-operations driver.
 *
 *   fsops CMD ARGS... [-- CMD ARGS...]...
 *
 *   write PATH TEXT    create/truncate PATH and write TEXT (no newline added)
 *   append PATH TEXT   append TEXT to PATH (created if missing)
 *   read PATH          print the contents of PATH verbatim
 *   ls DIR             print the entry names of DIR, sorted (strcmp), one per
 *                      line, without "." and ".."
 *   mkdir PATH         create directory PATH
 *   rm PATH            unlink file PATH
 *   rmdir PATH         remove empty directory PATH
 *   mv SRC DST         rename SRC to DST
 *   stat PATH          print "dir" or "file SIZE"
 *   cd PATH            chdir to PATH (every fixture starts in $PWD; "cd /"
 *                      acts as a program that ignores PWD)
 *
 * Commands run in order. When one fails, "error: CMD PATH: STRERROR" goes to
 * stderr and the program exits 1 without running the rest. A malformed
 * command line (unknown command, wrong argument count) prints
 * "usage: ..." to stderr and exits 64 before anything runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct spec {
    const char *name;
    int nargs;
};

static const struct spec specs[] = {
    {"write", 2}, {"append", 2}, {"read", 1},  {"ls", 1},   {"mkdir", 1},
    {"rm", 1},    {"rmdir", 1},  {"mv", 2},    {"stat", 1}, {"cd", 1},
};

static const struct spec *find_spec(const char *name) {
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (strcmp(specs[i].name, name) == 0) return &specs[i];
    return NULL;
}

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

static int put_text(const char *path, const char *text, int flags) {
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    if (fd < 0) return -1;
    if (write_all(fd, text, strlen(text)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return close(fd);
}

static char buf[65536];

static int do_read(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (write_all(1, buf, (size_t)r) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return close(fd);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int do_ls(const char *path) {
    DIR *d = opendir(path);
    if (d == NULL) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) {
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            names = grown;
        }
        names[n] = strdup(ent->d_name);
        if (names[n] == NULL) {
            closedir(d);
            errno = ENOMEM;
            return -1;
        }
        n++;
        errno = 0;
    }
    if (errno != 0) {
        int e = errno;
        closedir(d);
        errno = e;
        return -1;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        fputs(names[i], stdout);
        fputc('\n', stdout);
        free(names[i]);
    }
    free(names);
    return 0;
}

static int do_stat(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        fputs("dir\n", stdout);
    } else {
        /* Format the size by hand: printf would add ~20 KB to the binary. */
        char num[24];
        char *p = num + sizeof num;
        unsigned long long v = (unsigned long long)st.st_size;
        *--p = '\0';
        do {
            *--p = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        fputs("file ", stdout);
        fputs(p, stdout);
        fputc('\n', stdout);
    }
    return 0;
}

static int run(const char *cmd, char **a) {
    if (strcmp(cmd, "write") == 0) return put_text(a[0], a[1], O_TRUNC);
    if (strcmp(cmd, "append") == 0) return put_text(a[0], a[1], O_APPEND);
    if (strcmp(cmd, "read") == 0) return do_read(a[0]);
    if (strcmp(cmd, "ls") == 0) return do_ls(a[0]);
    if (strcmp(cmd, "mkdir") == 0) return mkdir(a[0], 0755);
    if (strcmp(cmd, "rm") == 0) return unlink(a[0]);
    if (strcmp(cmd, "rmdir") == 0) return rmdir(a[0]);
    if (strcmp(cmd, "mv") == 0) return rename(a[0], a[1]);
    if (strcmp(cmd, "stat") == 0) return do_stat(a[0]);
    if (strcmp(cmd, "cd") == 0) return chdir(a[0]);
    errno = EINVAL;
    return -1;
}

static void usage(void) {
    fputs("usage: fsops CMD ARGS... [-- CMD ARGS...]...\n"
          "  write PATH TEXT | append PATH TEXT | read PATH | ls DIR |\n"
          "  mkdir PATH | rm PATH | rmdir PATH | mv SRC DST | stat PATH |\n"
          "  cd PATH\n",
          stderr);
}

/* Length of the command starting at argv[i]: up to the next "--" or end. */
static int group_len(int argc, char **argv, int i) {
    int j = i;
    while (j < argc && strcmp(argv[j], "--") != 0) j++;
    return j - i;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage();
        return 64;
    }
    /* Validate the whole script first, so a typo runs nothing. */
    for (int i = 1; i < argc;) {
        int len = group_len(argc, argv, i);
        const struct spec *s = len > 0 ? find_spec(argv[i]) : NULL;
        if (s == NULL || len - 1 != s->nargs) {
            usage();
            return 64;
        }
        i += len + 1;
    }
    for (int i = 1; i < argc;) {
        int len = group_len(argc, argv, i);
        const char *cmd = argv[i];
        if (run(cmd, &argv[i + 1]) != 0) {
            int e = errno;
            fflush(stdout);
            fputs("error: ", stderr);
            fputs(cmd, stderr);
            fputc(' ', stderr);
            fputs(argv[i + 1], stderr);
            fputs(": ", stderr);
            fputs(strerror(e), stderr);
            fputc('\n', stderr);
            return 1;
        }
        i += len + 1;
    }
    fflush(stdout);
    return 0;
}
