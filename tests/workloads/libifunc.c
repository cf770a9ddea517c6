// BUILD_FLAGS: -shared -fPIC
// A library whose constructor writes files and whose `pick` is a GNU
// IFUNC: probing `pick` must not run the constructor with rtrace's
// privileges, nor let it write anywhere (IFUNC_CTOR_FILES: paths separated
// by `:`, one where only root may write, one anybody may).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pick_one(int x) { return x + 1; }
static int pick_two(int x) { return x + 2; }

// The resolver chooses pick_two: a probe must fire there.
static int (*resolve_pick(void))(int) { return pick_two; }

int pick(int x) __attribute__((ifunc("resolve_pick")));

__attribute__((constructor)) static void announce(void) {
    const char *paths = getenv("IFUNC_CTOR_FILES");
    char copy[4096];
    if (!paths || strlen(paths) >= sizeof(copy))
        return;
    strcpy(copy, paths);
    for (char *path = strtok(copy, ":"); path; path = strtok(NULL, ":")) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("the constructor ran here\n", f);
            fclose(f);
        }
    }
}

// Keeps pick_one from being dropped as unused.
int unused_pick_one(int x) { return pick_one(x); }
