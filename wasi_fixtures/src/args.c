/* args: print every argv element as "argv[i]=..." and then every environ
 * entry, in order, as "env NAME=VALUE"; exit 0. */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; e && *e; e++) printf("env %s\n", *e);
    return 0;
}
