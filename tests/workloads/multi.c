// Loads ./libmulti_a and ./libmulti_b and calls, ROUNDS times (argv[1]),
// multi_a1 once, multi_a2 twice, multi_a3 three times, multi_b1 four times
// and multi_b2 five times, each with the round number. With a second
// argument `hold` it then waits to be killed, keeping both libraries
// mapped (a probe attached meanwhile is installed in it).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*fn)(int);

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    void *a = dlopen("./libmulti_a", RTLD_NOW);
    void *b = dlopen("./libmulti_b", RTLD_NOW);
    if (!a || !b) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    const char *names[] = {"multi_a1", "multi_a2", "multi_a3", "multi_b1", "multi_b2"};
    int total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int f = 0; f < 5; f++) {
            fn call = (fn)dlsym(f < 3 ? a : b, names[f]);
            for (int n = 0; n <= f; n++)
                total += call(r);
        }
    }
    if (argc > 2 && strcmp(argv[2], "hold") == 0)
        pause();
    return total < 0;
}
