// Command gen writes pairs of real Go allocation profiles for bench/delta_bench.cpp.
//
// For each size it starts a fresh child process (so cumulative counts start at zero) that sets
// runtime.MemProfileRate = 1 (every allocation is recorded, so the profiles are deterministic
// in shape), allocates from many distinct call stacks and writes two consecutive "allocs"
// profiles exactly as net/http/pprof would serve them (gzipped, runtime/pprof's own encoder):
//
//	<out>/<size>-base.pb.gz    after the first round of allocations
//	<out>/<size>-next.pb.gz    after a second round: every stack allocates again, and a few
//	                           percent of new stacks appear (a steady-state scrape)
//
// Distinct stacks come from a recursion that, at every level, calls one of four distinct
// functions chosen by the next base-4 digit of a path number: depth d gives 4^d stacks.
//
//	go run . -out DIR            # small (~50 KB), medium (~500 KB), large (~5 MB) uncompressed
//
// Standard library only; builds with Go 1.19.
package main

import (
	"flag"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
)

// Paths per size, calibrated so the uncompressed "next" profile is roughly the named size.
var sizes = []struct {
	name  string
	paths int
}{
	{"small", 1000},
	{"medium", 11500},
	{"large", 120000},
}

const depth = 9 // 4^9 = 262144 distinct leaf stacks available

var sink []byte

func main() {
	out := flag.String("out", "", "directory to write the profiles into")
	child := flag.String("child", "", "internal: write one size (name:paths)")
	flag.Parse()
	if *out == "" {
		log.Fatal("gen: -out is required")
	}
	if *child != "" {
		runChild(*out, *child)
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sizes {
		cmd := exec.Command(self, "-out", *out, "-child", s.name+":"+strconv.Itoa(s.paths))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("gen: %s: %v", s.name, err)
		}
	}
}

func runChild(out, spec string) {
	runtime.MemProfileRate = 1
	name, paths := spec, 0
	for i := len(spec) - 1; i >= 0; i-- {
		if spec[i] == ':' {
			name = spec[:i]
			n, err := strconv.Atoi(spec[i+1:])
			if err != nil {
				log.Fatal(err)
			}
			paths = n
			break
		}
	}
	// Round 1: every path allocates once, then the baseline scrape. Round 2: every path
	// allocates again and 5% new paths appear, then the second scrape. One loop, so both rounds
	// call round() from the same call site and share their stacks, as in a long-running service.
	for i, n := range []int{paths, paths + paths/20} {
		round(n)
		write(filepath.Join(out, name+[]string{"-base.pb.gz", "-next.pb.gz"}[i]))
	}
}

// round allocates once from each of the first n paths.
//
//go:noinline
func round(n int) {
	for p := 0; p < n; p++ {
		dispatch(depth, p)
	}
}

func write(path string) {
	runtime.GC() // the heap profile reports allocations as of the last completed GC
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

//go:noinline
func dispatch(d, path int) {
	switch path % 4 {
	case 0:
		levelA(d, path/4)
	case 1:
		levelB(d, path/4)
	case 2:
		levelC(d, path/4)
	default:
		levelD(d, path/4)
	}
}

//go:noinline
func levelA(d, path int) { next(d, path, 16) }

//go:noinline
func levelB(d, path int) { next(d, path, 48) }

//go:noinline
func levelC(d, path int) { next(d, path, 128) }

//go:noinline
func levelD(d, path int) { next(d, path, 512) }

// next either recurses one level down (through a distinct call site per choice) or, at the
// bottom, allocates size bytes.
//
//go:noinline
func next(d, path, size int) {
	if d <= 1 {
		sink = make([]byte, size)
		return
	}
	switch path % 4 {
	case 0:
		levelA(d-1, path/4)
	case 1:
		levelB(d-1, path/4)
	case 2:
		levelC(d-1, path/4)
	default:
		levelD(d-1, path/4)
	}
}
