// Command gen records the real Go runtime profiles the pprof unit tests read.
//
// Run from this directory: go run . -out ..
// Cumulative profiles (allocs, mutex, block) are written twice with more work in between, so the
// tests can diff two consecutive scrapes of one process the way pprofd does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// Retained so that the heap profile has in-use memory as well as allocations.
var retained [][]byte

//go:noinline
func allocSmall(n int) {
	for i := 0; i < n; i++ {
		retained = append(retained, make([]byte, 1024))
	}
}

//go:noinline
func allocLarge(n int) {
	for i := 0; i < n; i++ {
		b := make([]byte, 256*1024)
		if i%4 == 0 {
			retained = append(retained, b)
		}
	}
}

//go:noinline
func contendMutex(rounds int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				mu.Lock()
				time.Sleep(50 * time.Microsecond)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

//go:noinline
func blockOnChannel(rounds int) {
	ch := make(chan int)
	go func() {
		for i := 0; i < rounds; i++ {
			time.Sleep(100 * time.Microsecond)
			ch <- i
		}
		close(ch)
	}()
	for range ch {
	}
}

//go:noinline
func spin(d time.Duration) int {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 1000; i++ {
			x += i * i
		}
	}
	return x
}

//go:noinline
func work(round int) {
	allocSmall(1000 + 1000*round)
	allocLarge(16 * round)
	contendMutex(10 + 10*round)
	blockOnChannel(10 + 10*round)
}

func write(dir, name, profile string) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(profile).WriteTo(f, 0); err != nil {
		log.Fatal(err)
	}
}

// Heap profiles show the state as of the last completed GC cycle; two cycles publish everything.
func publishHeap() {
	runtime.GC()
	runtime.GC()
}

func main() {
	out := flag.String("out", "..", "directory for the .pb.gz files")
	flag.Parse()
	runtime.MemProfileRate = 64 * 1024
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)

	// The same call sites run in both rounds, so the second scrape has the same stacks with
	// higher cumulative values, as consecutive scrapes of a real service do.
	for round := 1; round <= 2; round++ {
		work(round)
		publishHeap()
		suffix := fmt.Sprintf("_%d.pb.gz", round)
		write(*out, "allocs"+suffix, "allocs")
		write(*out, "mutex"+suffix, "mutex")
		write(*out, "block"+suffix, "block")
	}
	write(*out, "heap.pb.gz", "heap")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-stop }()
	}
	write(*out, "goroutine.pb.gz", "goroutine")
	close(stop)
	wg.Wait()

	f, err := os.Create(filepath.Join(*out, "cpu.pb.gz"))
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	pprof.Do(context.Background(), pprof.Labels("phase", "spin"), func(context.Context) {
		spin(300 * time.Millisecond)
	})
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	runtime.KeepAlive(retained)
}
