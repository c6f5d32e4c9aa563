// Command sim is the load-generation side of the pprofd end-to-end benchmark: it records real Go
// profiles once, then plays thousands of Go services for pprofd to scrape, and stands in for the
// Pyroscope server pprofd pushes to. Standard library only; builds with Go 1.19.
//
//	sim record -out DIR [-size small|medium|large]
//
// Runs a realistic workload in-process (goroutines allocating from thousands of distinct call
// stacks, some memory kept live, contended mutexes, goroutines blocking on channels) and writes
// what net/http/pprof would serve for it, byte for byte (runtime/pprof, debug=0, gzipped):
// 40 consecutive snapshots, 0.5 s apart, of heap, allocs, goroutine, mutex and block
// (DIR/heap-000.pb.gz ... DIR/block-039.pb.gz), three 2 s CPU profiles (DIR/cpu-00N.pb.gz), and
// DIR/manifest.json with their sizes. A series of snapshots of one process, rather than one
// profile replayed, is what makes the benchmark honest: the cumulative columns (alloc_*,
// contentions, delay) grow between consecutive snapshots and new stacks appear, so the deltas
// pprofd computes are real deltas of a real process, not empty ones.
//
//	sim serve -dir DIR -first F -count N -port 6060 [-stats ADDR] [-procs K]
//
// The target simulator. Target i listens on its own loopback address 127.A.B.C (A = 1 + i/62500,
// B = i/250 % 250, C = i%250 + 1; Linux routes all of 127/8 to lo) and the same port for all, as
// pods in a cluster do: one IP per target keeps the collector's view realistic (one connection
// pool entry, one keep-alive connection, one DNS-free address per target) and avoids running out
// of ports. Each target serves the recorded profiles from memory like a Go net/http/pprof server,
// walking forward through the snapshot series (target i starts at snapshot i%8 and advances one
// snapshot per scrape of that profile, then repeats the last one), so values never go backwards.
// Prints "ready N" on stdout once every listener is bound.
//
//	sim receive -listen 127.0.0.1:PORT [-delay D]
//
// A fast stand-in for Pyroscope: accepts Connect unary pushes (POST /push.v1.PusherService/Push,
// application/proto) and /ingest uploads, parses just enough protobuf to count series, profiles
// and bytes, and reports the counters at GET /stats. -delay adds latency per request, to show
// what batching buys. Prints "ready" on stdout once listening.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"
)

const usage = `usage:
  sim record  -out DIR [-size small|medium|large]
  sim serve   -dir DIR -first F -count N [-port 6060] [-stats ADDR] [-procs K]
  sim receive -listen 127.0.0.1:PORT [-delay D]
`

func main() {
	log.SetFlags(0)
	log.SetPrefix("sim: ")
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "record":
		runRecord(args)
	case "serve":
		runServe(args)
	case "receive":
		runReceive(args)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sim: unknown subcommand %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

// quietLog is the ErrorLog of the HTTP servers: net/http logs accept errors (e.g. out of file
// descriptors), bad requests and the like per event, which at thousands of targets would flood
// stderr and cost CPU. It counts every line and prints at most one per interval.
type quietLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
	total   int
}

func (q *quietLog) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.total++
	now := time.Now()
	if now.Sub(q.last) < 10*time.Second {
		q.dropped++
		return len(p), nil
	}
	if q.dropped > 0 {
		fmt.Fprintf(os.Stderr, "sim: (%d similar server errors not shown)\n", q.dropped)
		q.dropped = 0
	}
	q.last = now
	os.Stderr.Write(p)
	return len(p), nil
}

func (q *quietLog) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

func newQuietLogger(q *quietLog) *log.Logger { return log.New(io.Writer(q), "sim: http: ", 0) }
