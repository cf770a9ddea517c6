// BUILD_FLAGS: -shared -fPIC
// The second library `multi` calls (multi_bN returns x + 10 * N), and two
// functions it never calls whose first instruction the kernel will not
// probe: one rtrace knows it refuses (a `lock` prefix), one only the
// kernel knows (a VEX-encoded move).
int multi_b1(int x) { return x + 10; }
int multi_b2(int x) { return x + 20; }

__attribute__((naked)) void multi_b_locked(int *p) { __asm__("lock incl (%rdi)\n ret"); }
__attribute__((naked)) void multi_b_vex(void) { __asm__("vmovdqa %ymm0, %ymm1\n ret"); }
