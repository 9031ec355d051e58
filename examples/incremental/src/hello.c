/* The "code under test" of examples/incremental: TEST-01-HELLO runs it in the VM. */
#include <stdio.h>

int main(void) {
        puts("itest-hello: version 1");
        return 0;
}
