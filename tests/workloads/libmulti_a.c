// BUILD_FLAGS: -shared -fPIC
// The first of two libraries `multi` calls: multi_aN returns x + N.
int multi_a1(int x) { return x + 1; }
int multi_a2(int x) { return x + 2; }
int multi_a3(int x) { return x + 3; }
