// Calls Fibonacci(n) (iterative, not inlined when built with -gcflags=-l)
// for each number in argv and prints each result: Go register-ABI
// arguments (ax) and return values for uprobe/uretprobe tests.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func Fibonacci(n int) int {
	if n < 2 {
		return n
	}
	p, q, r := 0, 0, 1
	for i := 2; i <= n; i++ {
		p = q
		q = r
		r = p + q
	}
	return r
}

func main() {
	for _, a := range os.Args[1:] {
		n, _ := strconv.Atoi(a)
		fmt.Println(Fibonacci(n))
	}
}
