// Calls visit(&rec, &pt) once with known values: struct definitions written
// in scripts (members of every width, char arrays, arrays, nested structs,
// pointer members) are read from it; hold() gets an array of pointers. Everything lives on the stack, so the
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

__attribute__((noinline)) int visit(struct rec *r, struct point *p) { return r->pt.x + p->y; }
__attribute__((noinline)) int hold(struct holder *h) { return h->pts[1]->x; }

int main(void) {
  char name[16];
  strcpy(name, "widget");
  struct rec r = {name, "tag-one", {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01}, {-1, 2, 300}, {10, -20}, -5000000000};
  struct point p = {7, 8};
  struct holder h = {{&r.pt, &p}};
  return visit(&r, &p) == 18 && hold(&h) == 7 ? 0 : 1;
}
