// Loads ./libifunc and calls its IFUNC `pick` N times (N = argv[1]).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    void *lib = dlopen("./libifunc", RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    int (*pick)(int) = (int (*)(int))dlsym(lib, "pick");
    int total = 0;
    for (int i = 0; i < n; i++)
        total += pick(i);
    printf("%d\n", total);
    return 0;
}
