// A pipeline of 100 goroutines joined by unbuffered channels: main feeds
// 20 numbers in, each goroutine calls Handle 20 times, and Handle blocks
// on its input channel, so the goroutine parks and later resumes, often on
// another thread (4 Ps). Per-thread keys (tid) then pair one goroutine's
// entry with another's return; goroutine ids (goid) do not. Prints the sum
// of what comes out of the pipeline. An argument N makes it wait N
// seconds first (for a tracer to attach with -p).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const workers = 100
const rounds = 20

// Handle receives one number, passes it on plus one, and returns it.
func Handle(in <-chan int, out chan<- int) int {
	v := <-in
	out <- v + 1
	return v
}

func main() {
	if len(os.Args) > 1 {
		n, _ := strconv.Atoi(os.Args[1])
		time.Sleep(time.Duration(n) * time.Second)
	}
	runtime.GOMAXPROCS(4)
	chans := make([]chan int, workers+1)
	for i := range chans {
		chans[i] = make(chan int)
	}
	// Every Handle returns before main does (Go ends the other goroutines
	// when main returns).
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				Handle(chans[w], chans[w+1])
			}
		}(w)
	}
	go func() {
		for r := 0; r < rounds; r++ {
			chans[0] <- r
		}
	}()
	sum := 0
	for r := 0; r < rounds; r++ {
		sum += <-chans[workers]
	}
	wg.Wait()
	fmt.Println("sum", sum)
}
