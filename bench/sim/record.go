package main

// sim record: a workload that looks like a busy mid-size Go service to its profiler, and the
// loop that captures what net/http/pprof would serve for it.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"time"
)

// Profile types snapshotted in series, in file-name form (also their runtime/pprof names).
var seriesTypes = []string{"heap", "allocs", "goroutine", "mutex", "block"}

const (
	snapshots        = 40
	snapshotInterval = 500 * time.Millisecond
	warmup           = 3 * time.Second // so the first snapshot already looks like a warm service
	cpuProfiles      = 3
	cpuSeconds       = 2 * time.Second

	memProfileRate       = 64 << 10 // 1/8 of Go's default: more stacks seen, still cheap
	mutexProfileFraction = 5
	blockProfileRate     = 10000 // ns: every blocking event of 10 µs or more, shorter ones sampled
)

// preset sizes the workload. Uncompressed heap profiles: small ~70 KB, medium (a mid-size service
// with a few thousand distinct allocation stacks) ~150 KB, large ~800 KB.
type preset struct {
	AllocPaths int `json:"alloc_paths"` // distinct allocation stacks
	AllocRate  int `json:"alloc_rate"`  // bytes per second allocated by the workload
	LiveBytes  int `json:"live_bytes"`  // bytes kept live in caches (replaced over time), plus a slow leak
	ParkPaths  int `json:"park_paths"`  // distinct stacks of long-parked goroutines
	Parked     int `json:"parked"`      // long-parked goroutines
	LockPaths  int `json:"lock_paths"`  // distinct stacks that take the contended mutexes
	WaitPaths  int `json:"wait_paths"`  // distinct stacks that block on channels
}

var presets = map[string]preset{
	"small":  {AllocPaths: 1024, AllocRate: 150 << 20, LiveBytes: 16 << 20, ParkPaths: 128, Parked: 400, LockPaths: 64, WaitPaths: 64},
	"medium": {AllocPaths: 2600, AllocRate: 400 << 20, LiveBytes: 48 << 20, ParkPaths: 512, Parked: 1500, LockPaths: 256, WaitPaths: 256},
	"large":  {AllocPaths: 16384, AllocRate: 500 << 20, LiveBytes: 96 << 20, ParkPaths: 2048, Parked: 5000, LockPaths: 1024, WaitPaths: 1024},
}

func runRecord(args []string) {
	fs := flag.NewFlagSet("record", flag.ExitOnError)
	out := fs.String("out", "", "directory to write the profiles and manifest.json into")
	size := fs.String("size", "medium", "workload size: small, medium or large")
	fs.Parse(args)
	if *out == "" {
		log.Fatal("record: -out is required")
	}
	p, ok := presets[*size]
	if !ok {
		log.Fatalf("record: unknown -size %q (small, medium, large)", *size)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}

	runtime.MemProfileRate = memProfileRate
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	runtime.SetBlockProfileRate(blockProfileRate)

	began := time.Now()
	w := startWorkload(p)
	time.Sleep(warmup)

	var files []fileInfo
	var mu sync.Mutex
	save := func(typ string, idx int, gz []byte) {
		fi, err := writeProfile(*out, typ, idx, gz)
		if err != nil {
			log.Fatal(err)
		}
		mu.Lock()
		files = append(files, fi)
		mu.Unlock()
	}

	// CPU profiles run alongside the snapshot series (a CPU scrape takes seconds; the other
	// profiles are point-in-time).
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		for i := 0; i < cpuProfiles; i++ {
			var buf bytes.Buffer
			if err := pprof.StartCPUProfile(&buf); err != nil {
				log.Fatal(err)
			}
			time.Sleep(cpuSeconds)
			pprof.StopCPUProfile()
			save("cpu", i, buf.Bytes())
		}
	}()

	// The ticker drops ticks when writing a round takes longer than the interval (large
	// profiles on a busy machine); the manifest records the real span.
	seriesStart := time.Now()
	tick := time.NewTicker(snapshotInterval)
	for i := 0; i < snapshots; i++ {
		if i > 0 {
			<-tick.C
		}
		for _, typ := range seriesTypes {
			var buf bytes.Buffer
			if err := pprof.Lookup(typ).WriteTo(&buf, 0); err != nil {
				log.Fatal(err)
			}
			save(typ, i, buf.Bytes())
		}
	}
	tick.Stop()
	seriesSpan := time.Since(seriesStart)
	<-cpuDone
	w.stop()

	m := buildManifest(*size, p, files, time.Since(began))
	m.SeriesSeconds = seriesSpan.Seconds()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "manifest.json"), append(data, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("recorded %d snapshots (over %.1fs) + %d cpu in %.1fs into %s:",
		snapshots, m.SeriesSeconds, cpuProfiles, time.Since(began).Seconds(), *out)
	for _, typ := range append(append([]string{}, seriesTypes...), "cpu") {
		t := m.Types[typ]
		fmt.Printf(" %s %.0f/%.0f KB", typ, t.Compressed.Mean/1024, t.Uncompressed.Mean/1024)
	}
	fmt.Println(" (mean gzipped/uncompressed)")
}

// fileInfo describes one recorded profile.
type fileInfo struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Index        int    `json:"index"`
	Compressed   int    `json:"compressed_bytes"`
	Uncompressed int    `json:"uncompressed_bytes"`
	Samples      int    `json:"samples"`
}

func writeProfile(dir, typ string, idx int, gz []byte) (fileInfo, error) {
	name := fmt.Sprintf("%s-%03d.pb.gz", typ, idx)
	fi := fileInfo{Name: name, Type: typ, Index: idx, Compressed: len(gz)}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fi, fmt.Errorf("%s: %v", name, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fi, fmt.Errorf("%s: %v", name, err)
	}
	fi.Uncompressed = len(raw)
	if fi.Samples, err = countSamples(raw); err != nil {
		return fi, fmt.Errorf("%s: %v", name, err)
	}
	return fi, os.WriteFile(filepath.Join(dir, name), gz, 0o644)
}

type stat struct {
	Min  int     `json:"min"`
	Max  int     `json:"max"`
	Mean float64 `json:"mean"`
}

type typeSummary struct {
	Files        int  `json:"files"`
	Compressed   stat `json:"compressed_bytes"`
	Uncompressed stat `json:"uncompressed_bytes"`
	Samples      stat `json:"samples"`
}

type manifest struct {
	GoVersion            string                 `json:"go_version"`
	Size                 string                 `json:"size"`
	Workload             preset                 `json:"workload"`
	Snapshots            int                    `json:"snapshots"`
	IntervalMillis       int                    `json:"snapshot_interval_ms"`
	CPUSeconds           float64                `json:"cpu_profile_seconds"`
	MemProfileRate       int                    `json:"mem_profile_rate"`
	MutexProfileFraction int                    `json:"mutex_profile_fraction"`
	BlockProfileRate     int                    `json:"block_profile_rate_ns"`
	GOMAXPROCS           int                    `json:"gomaxprocs"`
	RecordSeconds        float64                `json:"record_seconds"`
	SeriesSeconds        float64                `json:"series_seconds"` // first to last snapshot
	Types                map[string]typeSummary `json:"types"`
	Files                []fileInfo             `json:"files"`
}

func buildManifest(size string, p preset, files []fileInfo, took time.Duration) manifest {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	m := manifest{
		GoVersion: runtime.Version(), Size: size, Workload: p,
		Snapshots: snapshots, IntervalMillis: int(snapshotInterval / time.Millisecond),
		CPUSeconds:     cpuSeconds.Seconds(),
		MemProfileRate: memProfileRate, MutexProfileFraction: mutexProfileFraction,
		BlockProfileRate: blockProfileRate, GOMAXPROCS: runtime.GOMAXPROCS(0),
		RecordSeconds: took.Seconds(), Types: map[string]typeSummary{}, Files: files,
	}
	for _, typ := range append(append([]string{}, seriesTypes...), "cpu") {
		var c, u, s []int
		for _, f := range files {
			if f.Type == typ {
				c, u, s = append(c, f.Compressed), append(u, f.Uncompressed), append(s, f.Samples)
			}
		}
		m.Types[typ] = typeSummary{Files: len(c), Compressed: summarize(c), Uncompressed: summarize(u), Samples: summarize(s)}
	}
	return m
}

func summarize(v []int) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := stat{Min: v[0], Max: v[0]}
	sum := 0
	for _, x := range v {
		if x < s.Min {
			s.Min = x
		}
		if x > s.Max {
			s.Max = x
		}
		sum += x
	}
	s.Mean = float64(sum) / float64(len(v))
	return s
}

// ---------------------------------------------------------------------------------------------
// The workload.
//
// Distinct call stacks come from a recursion that, at every level, goes through one of four
// distinct functions chosen by the next base-4 digit of a path number (as in bench/gen), so
// d levels give 4^d stacks. Path p also sets a few extra levels, so stacks vary in depth. Every
// kind of activity (allocating, locking, waiting, parking) ends the recursion in its own leaf.

type workload struct {
	done chan struct{}
}

func startWorkload(p preset) *workload {
	w := &workload{done: make(chan struct{})}
	seed := int64(1)
	next := func() *rand.Rand { seed++; return rand.New(rand.NewSource(seed)) }

	// Allocators: steady allocation from AllocPaths stacks at AllocRate, a rotating cache of
	// live objects and a slow leak, so inuse_* is non-trivial and moves.
	const allocators = 4
	leak := &leakList{limit: p.LiveBytes / 4}
	for i := 0; i < allocators; i++ {
		a := &allocator{
			rng:   next(),
			paths: p.AllocPaths,
			rate:  float64(p.AllocRate) / allocators,
			live:  make([][]byte, p.LiveBytes*3/4/allocators/2048),
			leak:  leak,
		}
		w.run(a.loop)
	}

	// Lockers: contended mutexes taken from LockPaths stacks (mutex profile; the waits also
	// land in the block profile).
	locks := &lockSet{}
	for i := 0; i < 6; i++ {
		l := &locker{rng: next(), paths: p.LockPaths, set: locks}
		w.run(l.loop)
	}

	// Waiters: a job queue whose consumers block on channel receives (and selects) from
	// WaitPaths stacks while producers feed it in bursts.
	jobs := make(chan int)
	for i := 0; i < 12; i++ {
		wt := &waiter{rng: next(), paths: p.WaitPaths, jobs: jobs, done: w.done}
		w.run(wt.loop)
	}
	w.run(func(done <-chan struct{}) {
		for {
			for j := 0; j < 24; j++ {
				select {
				case jobs <- j:
				case <-done:
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	})

	// Parked goroutines: a large, stable population (connection handlers, background loops)
	// plus short-lived ones that come and go (goroutine profile).
	for i := 0; i < p.Parked; i++ {
		path := (i * 7919) % p.ParkPaths
		go descend(path, park(w.done))
	}
	w.run(func(done <-chan struct{}) {
		rng := next()
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			path := rng.Intn(p.ParkPaths)
			d := time.Duration(50+rng.Intn(1500)) * time.Millisecond
			go descend(path, nap(d, done))
		}
	})
	return w
}

// run starts fn on its own goroutine until the workload stops.
func (w *workload) run(fn func(done <-chan struct{})) { go fn(w.done) }

// stop asks every goroutine to finish; the process exits right after, so it does not wait.
func (w *workload) stop() { close(w.done) }

// descend calls leaf(path) at the bottom of a recursion through 4^k distinct stacks.
func descend(path int, leaf func(int)) {
	digits := 1
	for n := 4; n <= path; n *= 4 {
		digits++
	}
	// Stacks of a real service vary in depth; 4..7 levels more than the path needs.
	levels := digits + 4 + (path*2654435761)>>7%4
	step(levels, path, path, leaf)
}

// step chooses the function for the next level by the low base-4 digit of rest.
//
//go:noinline
func step(d, rest, path int, leaf func(int)) {
	if d == 0 {
		leaf(path)
		return
	}
	switch rest % 4 {
	case 0:
		handleRequest(d-1, rest/4, path, leaf)
	case 1:
		decodePayload(d-1, rest/4, path, leaf)
	case 2:
		queryStore(d-1, rest/4, path, leaf)
	default:
		renderResponse(d-1, rest/4, path, leaf)
	}
}

//go:noinline
func handleRequest(d, rest, path int, leaf func(int)) { step(d, rest, path, leaf) }

//go:noinline
func decodePayload(d, rest, path int, leaf func(int)) { step(d, rest, path, leaf) }

//go:noinline
func queryStore(d, rest, path int, leaf func(int)) { step(d, rest, path, leaf) }

//go:noinline
func renderResponse(d, rest, path int, leaf func(int)) { step(d, rest, path, leaf) }

// allocator allocates from its paths at its byte rate.
type allocator struct {
	rng   *rand.Rand
	paths int
	rate  float64 // bytes per second
	live  [][]byte
	leak  *leakList
	bytes int64
	last  []byte
}

// Object sizes by path: mostly small objects, as in real services, in batches so every leaf
// call allocates a few KB.
var allocSizes = []int{16, 24, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 16384}

func (a *allocator) loop(done <-chan struct{}) {
	leaf := a.leaf
	start := time.Now()
	for {
		for i := 0; i < 64; i++ {
			descend(a.rng.Intn(a.paths), leaf)
		}
		select {
		case <-done:
			return
		default:
		}
		// Pace to the target rate.
		ahead := float64(a.bytes)/a.rate - time.Since(start).Seconds()
		if ahead > 0.001 {
			time.Sleep(time.Duration(ahead * float64(time.Second)))
		}
	}
}

//go:noinline
func (a *allocator) leaf(path int) {
	size := allocSizes[path%len(allocSizes)]
	n := 1 + (4096+path%8*512)/size
	var last []byte
	for i := 0; i < n; i++ {
		last = make([]byte, size)
		last[0] = byte(i)
	}
	a.bytes += int64(n * size)
	switch {
	case path%61 == 0:
		a.leak.add(last)
	case a.rng.Intn(4) == 0:
		a.live[a.rng.Intn(len(a.live))] = last
	default:
		a.last = last
	}
}

// leakList holds on to what it is given until it reaches its limit: inuse_space of a few
// stacks keeps growing, as in a service with a slow leak.
type leakList struct {
	mu    sync.Mutex
	limit int
	size  int
	held  [][]byte
}

func (l *leakList) add(b []byte) {
	l.mu.Lock()
	if l.size < l.limit {
		l.held = append(l.held, b)
		l.size += len(b)
	}
	l.mu.Unlock()
}

type lockSet struct {
	mu    [8]sync.Mutex
	state [8]uint64
}

type locker struct {
	rng   *rand.Rand
	paths int
	set   *lockSet
}

func (l *locker) loop(done <-chan struct{}) {
	leaf := l.leaf
	for {
		for i := 0; i < 32; i++ {
			descend(l.rng.Intn(l.paths), leaf)
			spin(200) // work outside the lock
		}
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

//go:noinline
func (l *locker) leaf(path int) {
	i := path % len(l.set.mu)
	l.set.mu[i].Lock()
	l.set.state[i] += spin(100 + path%4*100) // work inside the lock
	l.set.mu[i].Unlock()
}

// spin burns roughly n*2 ns of CPU.
//
//go:noinline
func spin(n int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < n; i++ {
		h = (h ^ uint64(i)) * 1099511628211
	}
	return h
}

type waiter struct {
	rng   *rand.Rand
	paths int
	jobs  chan int
	done  <-chan struct{}
	got   int
}

func (w *waiter) loop(done <-chan struct{}) {
	leaf := w.leaf
	for {
		select {
		case <-done:
			return
		default:
		}
		descend(w.rng.Intn(w.paths), leaf)
	}
}

//go:noinline
func (w *waiter) leaf(path int) {
	if path%2 == 0 {
		select {
		case j := <-w.jobs:
			w.got += j
		case <-w.done:
		}
		return
	}
	w.got += <-w.jobs
}

// park returns a leaf that waits until done is closed.
func park(done <-chan struct{}) func(int) {
	return func(path int) {
		if path%3 == 0 {
			var mu sync.Mutex
			c := sync.NewCond(&mu)
			go func() { <-done; mu.Lock(); c.Broadcast(); mu.Unlock() }()
			mu.Lock()
			select {
			case <-done:
			default:
				c.Wait()
			}
			mu.Unlock()
			return
		}
		<-done
	}
}

// nap returns a leaf that sleeps for d (or until done).
func nap(d time.Duration, done <-chan struct{}) func(int) {
	return func(int) {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-done:
			t.Stop()
		}
	}
}
