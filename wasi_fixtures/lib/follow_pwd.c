/* follow_pwd: linked into every fixture, so each one starts in the caller's
 * working directory.
 *
 * wasi-libc fixes a program's initial working directory at "/" (WASI has no
 * call for an initial cwd) and reads no PWD. oanix passes the working
 * directory as PWD, so this constructor, run before main, does
 * chdir(getenv("PWD")) when PWD is set and absolute. A PWD naming no
 * directory the program can see leaves the working directory at "/". */
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void follow_pwd(void) {
    const char *pwd = getenv("PWD");
    if (pwd != NULL && pwd[0] == '/')
        (void)chdir(pwd);
}
