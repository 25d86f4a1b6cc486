/* loop: spin forever; the volatile counter keeps the compiler from
 * removing the loop. Never returns (stop it with fuel or an epoch). */
static volatile unsigned long counter;

int main(void) {
    for (;;) counter++;
}
