// Calls visit(&rec, &pt) once with known values: struct definitions written
// in scripts (members of every width, char arrays, arrays, nested structs,
// pointer members) are read from it; hold() gets an array of pointers;
// flagged() bit-fields, a float and a packed struct. Everything lives on the stack, so the
// pages are present when the probe reads them.
#include <string.h>

struct point { int x; int y; };
struct rec {
  const char *name;
  char tag[8];
  unsigned char mac[6];
  short vals[3];
  struct point pt;
  long big;
};

struct holder { struct point *pts[2]; };

// Bit-fields (a signed one), a float, and a struct packed without padding.
struct flags { unsigned a : 1; unsigned b : 3; int c : 4; unsigned char d; float f; unsigned long long e : 40; };
struct __attribute__((packed)) tight { char t; int v; };

__attribute__((noinline)) int visit(struct rec *r, struct point *p) { return r->pt.x + p->y; }
__attribute__((noinline)) int hold(struct holder *h) { return h->pts[1]->x; }
__attribute__((noinline)) int flagged(struct flags *f, struct tight *t) { return f->b + t->v; }

int main(void) {
  char name[16];
  strcpy(name, "widget");
  struct rec r = {name, "tag-one", {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01}, {-1, 2, 300}, {10, -20}, -5000000000};
  struct point p = {7, 8};
  struct holder h = {{&r.pt, &p}};
  struct flags f = {1, 5, -3, 200, 1.5f, 0x123456789aULL};
  struct tight t = {'t', 77};
  return visit(&r, &p) == 18 && hold(&h) == 7 && flagged(&f, &t) == 82 ? 0 : 1;
}
