// BUILD_FLAGS: -shared -fPIC -fno-omit-frame-pointer
// A shared library whose `leaf` piemain calls through `caller`: ustack at a
// uprobe in a library, called from a position-independent executable.
__attribute__((noinline)) int leaf(int x) { return x * 3 + 1; }
