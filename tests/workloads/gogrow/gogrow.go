// 200 goroutines, goroutine k calling Work(2000+k) once, which recurses
// 2000+k deep with 128-byte frames: each goroutine's stack grows from
// 8 KiB to several hundred KiB, and Go copies it to a new place every time
// it doubles. A kernel uretprobe on main.Work leaves its trampoline's
// address as Work's return address on the stack being copied, and the
// runtime kills the program ("unexpected return pc"). Prints the sum of
// every Work(n) and exits 0.
package main

import (
	"fmt"
	"sync"
)

// Work returns the sum of 0..n, recursing n deep.
func Work(n int) int {
	return deep(n)
}

// deep recurses n deep; pad gives every frame 128 bytes of locals.
func deep(n int) int {
	var pad [16]int
	pad[n%16] = n
	if n == 0 {
		return pad[0]
	}
	return deep(n-1) + pad[n%16]
}

func main() {
	const goroutines = 200
	var wg sync.WaitGroup
	results := make([]int, goroutines)
	for k := 0; k < goroutines; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			results[k] = Work(2000 + k)
		}(k)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	fmt.Println("sum", sum)
}
