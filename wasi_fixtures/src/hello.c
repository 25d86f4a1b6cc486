/* hello: print a fixed greeting to stdout and exit 0. */
#include <stdio.h>

int main(void) {
    fputs("hello, wasi\n", stdout);
    return 0;
}
