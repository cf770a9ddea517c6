// A Go program calling a C function through cgo: cadd runs on the thread's
// own stack, with C's calling convention, and is not in Go's function
// table. Prints cadd(a, b) for the two numbers in argv.
package main

/*
int cadd(int a, int b) { return a + b; }
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	a, _ := strconv.Atoi(os.Args[1])
	b, _ := strconv.Atoi(os.Args[2])
	fmt.Println(C.cadd(C.int(a), C.int(b)))
}
