// Computes Fib(n) recursively for each number in argv (built with
// -gcflags=-l, so Fib is not inlined): ustack at main.Fib shows the
// recursion, Go keeping frame pointers on amd64 and arm64. It lingers
// 300 ms before it exits: a process gone before rtrace read its mappings
// prints addresses.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func Fib(n int) int {
	if n < 2 {
		return n
	}
	return Fib(n-1) + Fib(n-2)
}

func main() {
	for _, a := range os.Args[1:] {
		n, _ := strconv.Atoi(a)
		fmt.Println(Fib(n))
	}
	time.Sleep(300 * time.Millisecond)
}
