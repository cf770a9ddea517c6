// Classify has many return paths: two early returns, a switch whose cases
// return (large enough for Go 1.19 to compile it to a jump table: an
// indirect jump inside the function), and two returns after it. main
// classifies each number in argv and prints the results.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func Classify(n int) int {
	if n < 0 {
		return -1
	}
	if n == 0 {
		return 0
	}
	switch n {
	case 1:
		return 10
	case 2:
		return 20
	case 3:
		return 30 + len(os.Args)
	case 4:
		return 40 * len(os.Args)
	case 5:
		return 50 - len(os.Args)
	case 6:
		return 60 << len(os.Args)
	case 7:
		return 70 ^ len(os.Args)
	case 8:
		return 80 | len(os.Args)
	case 9:
		return 90 % (len(os.Args) + 100)
	}
	if n%2 == 0 {
		return n / 2
	}
	return n * 3
}

func main() {
	for _, a := range os.Args[1:] {
		n, _ := strconv.Atoi(a)
		fmt.Println(Classify(n))
	}
}
