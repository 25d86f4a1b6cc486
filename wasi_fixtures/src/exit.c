/* exit: write "bye\n" to stderr, then exit with the integer code given in
 * argv[1] (default 0). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 0;
    fputs("bye\n", stderr);
    fflush(stderr);
    exit(code);
}
