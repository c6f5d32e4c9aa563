// Command demo-app is a small Go service that serves net/http/pprof and keeps
// every profile type pprofd collects busy with recognisable stacks:
//
//   - CPU:        hashPayload, checksumSHA256, sortRecords/quickSort, fibRecursive, multiplyMatrices
//   - allocation: allocSmallBuffers, allocLargeBuffers, retainCacheEntries (kept live)
//   - mutex:      lockedUpdate (several goroutines share one sync.Mutex)
//   - block:      produceEvents / consumeEvents (unbuffered channel waits)
//   - goroutine:  parkedWorker (a stable population of parked goroutines)
//
// It uses the standard library only and builds with Go 1.19.
//
//	demo-app -listen 127.0.0.1:6060 -name demo -work 1
//
// -work scales the amount of work (0 = idle: only the parked goroutines exist).
// At -work 1 it uses roughly 10-25% of one core.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/* on http.DefaultServeMux
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	// tick is the period of every work loop; each loop does a bounded amount of
	// work per tick and sleeps for the rest, so CPU use stays moderate.
	tick = 100 * time.Millisecond
	// cpuBudgetPerTick is the CPU time the CPU loop spends per tick at -work 1.
	cpuBudgetPerTick = 12 * time.Millisecond
	// parkedGoroutines is the stable goroutine population.
	parkedGoroutines = 50
	// lockContenders is how many goroutines fight over one mutex.
	lockContenders = 4
	// eventConsumers is how many goroutines wait on the event channel.
	eventConsumers = 4
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6060", "address to serve /debug/pprof/ on (host:port)")
	name := flag.String("name", "demo", "instance name, printed in the startup log line")
	work := flag.Float64("work", 1, "work scale factor (0 = idle)")
	flag.Parse()

	log.SetFlags(0)
	if *work < 0 || *work > 8 {
		log.Fatalf("demo-app: -work must be between 0 and 8, got %v", *work)
	}

	// Sample mutex contention and blocking events so those profiles are non-empty.
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(10000) // one sample per ~10µs spent blocked

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Printf("demo-app %s: %v", *name, err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var wg sync.WaitGroup
	startParked(ctx, &wg)
	if *work > 0 {
		startWorkers(ctx, &wg, *work)
	}

	srv := &http.Server{
		Handler:           http.DefaultServeMux,
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: CPU profiles stream for ?seconds=N (pprofd asks for 14 s).
		IdleTimeout: 90 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	log.Printf("demo-app %s listening on %s", *name, ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("demo-app %s: serve: %v", *name, err)
			os.Exit(1)
		}
	}

	// A CPU profile request may still be running; do not wait for it.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	waitTimeout(&wg, 2*time.Second)
	os.Exit(0)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// ---------------------------------------------------------------------------
// goroutine profile: a stable population of parked goroutines

func startParked(ctx context.Context, wg *sync.WaitGroup) {
	for i := 0; i < parkedGoroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parkedWorker(ctx)
		}()
	}
}

//go:noinline
func parkedWorker(ctx context.Context) {
	<-ctx.Done()
}

func startWorkers(ctx context.Context, wg *sync.WaitGroup, work float64) {
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	run(func() { cpuLoop(ctx, work) })
	run(func() { allocLoop(ctx, work) })

	var shared sharedState
	shared.counts = make(map[int]int)
	for i := 0; i < lockContenders; i++ {
		id := i
		run(func() { contendLoop(ctx, work, &shared, id) })
	}

	events := make(chan int) // unbuffered: every send and receive waits
	for i := 0; i < eventConsumers; i++ {
		run(func() { consumeEvents(ctx, events) })
	}
	run(func() { produceEvents(ctx, work, events) })
}

// every calls f once per tick until ctx is done.
func every(ctx context.Context, f func(rng *rand.Rand)) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(rng)
		}
	}
}

// ---------------------------------------------------------------------------
// CPU profile: a few distinctly named CPU-bound functions

var sink interface{} // defeats dead-code elimination

func cpuLoop(ctx context.Context, work float64) {
	budget := time.Duration(float64(cpuBudgetPerTick) * work)
	if budget > 80*time.Millisecond {
		budget = 80 * time.Millisecond
	}
	payload := make([]byte, 32<<10)
	rand.New(rand.NewSource(1)).Read(payload)
	every(ctx, func(rng *rand.Rand) {
		deadline := time.Now().Add(budget)
		for i := 0; time.Now().Before(deadline); i++ {
			switch i % 5 {
			case 0:
				payload[rng.Intn(len(payload))]++
				sink = hashPayload(payload)
			case 1:
				sink = checksumSHA256(payload)
			case 2:
				sink = sortRecords(rng, 3000)
			case 3:
				sink = fibRecursive(21)
			case 4:
				sink = multiplyMatrices(rng, 24)
			}
		}
	})
}

// hashPayload is a hand-written FNV-1a over the payload, several rounds.
//
//go:noinline
func hashPayload(payload []byte) uint64 {
	h := uint64(14695981039346656037)
	for round := 0; round < 4; round++ {
		for _, b := range payload {
			h ^= uint64(b)
			h *= 1099511628211
		}
	}
	return h
}

//go:noinline
func checksumSHA256(payload []byte) [32]byte {
	return sha256.Sum256(payload)
}

//go:noinline
func sortRecords(rng *rand.Rand, n int) uint32 {
	recs := make([]uint32, n)
	for i := range recs {
		recs[i] = rng.Uint32()
	}
	quickSort(recs)
	return recs[n/2]
}

func quickSort(a []uint32) {
	for len(a) > 12 {
		p := a[len(a)/2]
		i, j := 0, len(a)-1
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		if j+1 < len(a)-i {
			quickSort(a[:j+1])
			a = a[i:]
		} else {
			quickSort(a[i:])
			a = a[:j+1]
		}
	}
	for i := 1; i < len(a); i++ { // insertion sort for short runs
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

//go:noinline
func fibRecursive(n int) int {
	if n < 2 {
		return n
	}
	return fibRecursive(n-1) + fibRecursive(n-2)
}

//go:noinline
func multiplyMatrices(rng *rand.Rand, n int) float64 {
	a := make([]float64, n*n)
	b := make([]float64, n*n)
	c := make([]float64, n*n)
	for i := range a {
		a[i] = rng.Float64()
		b[i] = rng.Float64()
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var sum float64
			for k := 0; k < n; k++ {
				sum += a[i*n+k] * b[k*n+j]
			}
			c[i*n+j] = sum
		}
	}
	return c[n*n-1] + float64(len(strconv.Itoa(n)))
}

// ---------------------------------------------------------------------------
// memory profile: allocations of varying sizes, some kept live

const (
	cacheEntries  = 256
	maxEntryBytes = 64 << 10 // up to ~16 MiB live in the cache
)

func allocLoop(ctx context.Context, work float64) {
	cache := make([][]byte, cacheEntries)
	rounds := int(2*work + 0.5)
	if rounds < 1 {
		rounds = 1
	}
	every(ctx, func(rng *rand.Rand) {
		for i := 0; i < rounds; i++ {
			sink = allocSmallBuffers(rng, 200)
			sink = allocLargeBuffers(rng, 4)
			retainCacheEntries(rng, cache, 4)
		}
	})
}

//go:noinline
func allocSmallBuffers(rng *rand.Rand, n int) int {
	total := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 16+rng.Intn(1024))
		b[0] = byte(i)
		total += len(b)
	}
	return total
}

//go:noinline
func allocLargeBuffers(rng *rand.Rand, n int) int {
	total := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 64<<10+rng.Intn(256<<10))
		b[len(b)-1] = byte(i)
		total += len(b)
	}
	return total
}

// retainCacheEntries replaces random cache slots, so the cache keeps a live set
// (inuse_space / inuse_objects) while old entries become garbage.
//
//go:noinline
func retainCacheEntries(rng *rand.Rand, cache [][]byte, n int) {
	for i := 0; i < n; i++ {
		b := make([]byte, 1024+rng.Intn(maxEntryBytes-1024))
		b[0] = byte(i)
		cache[rng.Intn(len(cache))] = b
	}
}

// ---------------------------------------------------------------------------
// mutex profile: several goroutines fighting over one sync.Mutex

type sharedState struct {
	mu     sync.Mutex
	counts map[int]int
}

func contendLoop(ctx context.Context, work float64, s *sharedState, id int) {
	updates := int(5*work + 0.5)
	if updates < 1 {
		updates = 1
	}
	every(ctx, func(rng *rand.Rand) {
		for i := 0; i < updates; i++ {
			lockedUpdate(s, id, time.Duration(200+rng.Intn(800))*time.Microsecond)
		}
	})
}

// lockedUpdate holds the lock while "doing I/O" (sleeping), so the other
// contenders wait on it without burning CPU.
//
//go:noinline
func lockedUpdate(s *sharedState, id int, hold time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(hold)
	s.counts[id]++
}

// ---------------------------------------------------------------------------
// block profile: consumers wait on an unbuffered channel

func produceEvents(ctx context.Context, work float64, events chan<- int) {
	perTick := int(20*work + 0.5)
	if perTick < 1 {
		perTick = 1
	}
	gap := tick / time.Duration(perTick+1)
	every(ctx, func(rng *rand.Rand) {
		for i := 0; i < perTick; i++ {
			time.Sleep(gap)
			select {
			case events <- rng.Int():
			case <-ctx.Done():
				return
			}
		}
	})
}

//go:noinline
func consumeEvents(ctx context.Context, events <-chan int) {
	n := 0
	for {
		select {
		case v := <-events:
			n += v & 1
		case <-ctx.Done():
			sink = fmt.Sprint(n)
			return
		}
	}
}
