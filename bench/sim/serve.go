package main

// sim serve: thousands of simulated Go services, each on its own loopback IP, serving the
// recorded profiles the way net/http/pprof does.

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Profile kinds a target serves; the first five walk through the recorded series.
const (
	kindHeap = iota
	kindAllocs
	kindGoroutine
	kindMutex
	kindBlock
	kindCPU
	numKinds
)

var kindNames = [numKinds]string{"heap", "allocs", "goroutine", "mutex", "block", "cpu"}

// kindOf maps a request path to its profile kind (no allocation).
func kindOf(path string) (int, bool) {
	switch path {
	case "/debug/pprof/heap":
		return kindHeap, true
	case "/debug/pprof/allocs":
		return kindAllocs, true
	case "/debug/pprof/goroutine":
		return kindGoroutine, true
	case "/debug/pprof/mutex":
		return kindMutex, true
	case "/debug/pprof/block":
		return kindBlock, true
	case "/debug/pprof/profile":
		return kindCPU, true
	}
	return 0, false
}

// targetIP is target i's address: 127.A.B.C with A = 1 + i/62500, B = i/250 % 250,
// C = i%250 + 1, which never collides with 127.0.0.1 and covers 250*250*254 targets.
func targetIP(i int) string {
	return fmt.Sprintf("127.%d.%d.%d", 1+i/62500, i/250%250, i%250+1)
}

const maxTargets = 254 * 62500

// Response header values, shared by every response (net/http only reads them).
var (
	hdrNosniff = []string{"nosniff"}
	hdrOctet   = []string{"application/octet-stream"}
	hdrDispo   [numKinds][]string
)

func init() {
	for k, name := range kindNames {
		if k == kindCPU {
			name = "profile" // what net/http/pprof's Profile handler names it
		}
		hdrDispo[k] = []string{`attachment; filename="` + name + `"`}
	}
}

// simulator holds the recorded profiles (loaded once, shared by every target) and the
// counters.
type simulator struct {
	profiles [numKinds][][]byte
	cpuNext  atomic.Uint64

	requests   [numKinds]atomic.Int64
	bytes      [numKinds]atomic.Int64
	notFound   atomic.Int64
	cpuWaiting atomic.Int64
	cpuAborted atomic.Int64
	connsNew   atomic.Int64
	connsOpen  atomic.Int64
}

// target is one simulated service.
type target struct {
	sim     *simulator
	offset  uint64                 // i % 8: where in the series this target starts
	scrapes [kindCPU]atomic.Uint64 // scrapes served per series kind
}

func (t *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := t.sim
	k, ok := kindOf(r.URL.Path)
	if !ok {
		s.notFound.Add(1)
		http.NotFound(w, r)
		return
	}
	var body []byte
	if k == kindCPU {
		// Like net/http/pprof: profile for ?seconds=S (default 30), give up if the client
		// goes away.
		s.cpuWaiting.Add(1)
		timer := time.NewTimer(time.Duration(querySeconds(r.URL.RawQuery, 30)) * time.Second)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			s.cpuWaiting.Add(-1)
			s.cpuAborted.Add(1)
			return
		}
		s.cpuWaiting.Add(-1)
		series := s.profiles[kindCPU]
		body = series[(s.cpuNext.Add(1)-1)%uint64(len(series))]
	} else {
		// Walk forward through the series, then repeat its last snapshot. ?gc=1 (and any
		// other parameter) is ignored.
		series := s.profiles[k]
		i := t.offset + t.scrapes[k].Add(1) - 1
		if last := uint64(len(series) - 1); i > last {
			i = last
		}
		body = series[i]
	}
	h := w.Header()
	h["X-Content-Type-Options"] = hdrNosniff
	h["Content-Type"] = hdrOctet
	h["Content-Disposition"] = hdrDispo[k]
	w.Write(body)
	s.requests[k].Add(1)
	s.bytes[k].Add(int64(len(body)))
}

// querySeconds returns the positive integer value of "seconds" in a raw query, or def.
func querySeconds(q string, def int) int {
	for q != "" {
		var kv string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		if strings.HasPrefix(kv, "seconds=") {
			if n, err := strconv.Atoi(kv[len("seconds="):]); err == nil && n > 0 {
				return n
			}
			return def
		}
	}
	return def
}

func (s *simulator) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.connsNew.Add(1)
		s.connsOpen.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.connsOpen.Add(-1)
	}
}

// load reads DIR/<kind>-NNN.pb.gz for every kind, in index order.
func (s *simulator) load(dir string) error {
	for k, name := range kindNames {
		files, err := filepath.Glob(filepath.Join(dir, name+"-[0-9][0-9][0-9].pb.gz"))
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no %s-NNN.pb.gz in %s (run sim record first)", name, dir)
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			s.profiles[k] = append(s.profiles[k], b)
		}
	}
	return nil
}

func runServe(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", "", "directory written by sim record")
	first := fs.Int("first", 0, "index of the first target")
	count := fs.Int("count", 1, "number of targets")
	port := fs.Int("port", 6060, "port every target listens on")
	statsAddr := fs.String("stats", "", "serve GET /stats (JSON counters) on this address")
	procs := fs.Int("procs", 0, "GOMAXPROCS (0: leave as is)")
	fs.Parse(args)
	if *dir == "" {
		log.Fatal("serve: -dir is required")
	}
	if *first < 0 || *count < 1 || *first+*count > maxTargets {
		log.Fatalf("serve: targets [%d, %d) out of range [0, %d)", *first, *first+*count, maxTargets)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	began := time.Now()

	// One fd per listener and one per keep-alive connection. Go (1.19+) has already raised the
	// soft limit to the hard one.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Fatalf("serve: getrlimit: %v", err)
	}
	if need := uint64(*count)*2 + 100; rl.Cur < need {
		log.Fatalf("serve: %d targets need %d file descriptors (a listener and a connection each), "+
			"but RLIMIT_NOFILE is %d: raise the hard limit (ulimit -Hn) or split the targets over "+
			"several serve processes with -first/-count (at most %d per process)",
			*count, need, rl.Cur, (rl.Cur-100)/2)
	}

	s := &simulator{}
	if err := s.load(*dir); err != nil {
		log.Fatalf("serve: %v", err)
	}
	errs := &quietLog{}
	errLog := newQuietLogger(errs)
	for i := *first; i < *first+*count; i++ {
		addr := net.JoinHostPort(targetIP(i), strconv.Itoa(*port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("serve: target %d: %v", i, err)
		}
		srv := &http.Server{
			Handler:           &target{sim: s, offset: uint64(i % 8)},
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       10 * time.Minute, // Go services keep connections open
			MaxHeaderBytes:    64 << 10,
			ConnState:         s.connState,
			ErrorLog:          errLog,
		}
		go srv.Serve(ln)
	}
	fmt.Printf("ready %d\n", *count)
	fmt.Fprintf(os.Stderr, "sim: serving targets [%d, %d) on %s..%s port %d, bound in %.2fs\n",
		*first, *first+*count, targetIP(*first), targetIP(*first+*count-1), *port,
		time.Since(began).Seconds())

	if *statsAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(s.statsJSON(*first, *count, began, errs.count()))
		})
		go func() {
			srv := &http.Server{Addr: *statsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			log.Fatalf("serve: stats: %v", srv.ListenAndServe())
		}()
	}
	waitForSignal()
}

func (s *simulator) statsJSON(first, count int, began time.Time, serverErrors int) []byte {
	type pathStats struct {
		Requests int64 `json:"requests"`
		Bytes    int64 `json:"bytes"`
	}
	out := struct {
		First        int                  `json:"first"`
		Count        int                  `json:"count"`
		Uptime       float64              `json:"uptime_s"`
		Paths        map[string]pathStats `json:"paths"`
		Requests     int64                `json:"requests"`
		Bytes        int64                `json:"bytes"`
		NotFound     int64                `json:"not_found"`
		CPUWaiting   int64                `json:"cpu_waiting"`
		CPUAborted   int64                `json:"cpu_aborted"`
		ConnsNew     int64                `json:"conns_opened"`
		ConnsOpen    int64                `json:"conns_open"`
		ServerErrors int                  `json:"server_errors"`
		Usage        rusage               `json:"process"`
	}{
		First: first, Count: count, Uptime: time.Since(began).Seconds(),
		Paths:    map[string]pathStats{},
		NotFound: s.notFound.Load(), CPUWaiting: s.cpuWaiting.Load(), CPUAborted: s.cpuAborted.Load(),
		ConnsNew: s.connsNew.Load(), ConnsOpen: s.connsOpen.Load(), ServerErrors: serverErrors,
		Usage: getRusage(),
	}
	for k, name := range kindNames {
		p := pathStats{Requests: s.requests[k].Load(), Bytes: s.bytes[k].Load()}
		out.Paths[name] = p
		out.Requests += p.Requests
		out.Bytes += p.Bytes
	}
	b, _ := json.Marshal(out)
	return append(b, '\n')
}

// rusage is the process's own CPU time and memory, for the benchmark report.
type rusage struct {
	UserSeconds float64 `json:"cpu_user_s"`
	SysSeconds  float64 `json:"cpu_sys_s"`
	MaxRSSKB    int64   `json:"max_rss_kb"`
	Goroutines  int     `json:"goroutines"`
	HeapInuseKB uint64  `json:"heap_inuse_kb"`
	StackKB     uint64  `json:"stack_inuse_kb"`
	GoSysKB     uint64  `json:"go_sys_kb"`
	NumGC       uint32  `json:"gc_cycles"`
}

func getRusage() rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rusage{
		HeapInuseKB: ms.HeapInuse >> 10, StackKB: ms.StackInuse >> 10, GoSysKB: ms.Sys >> 10,
		NumGC:       ms.NumGC,
		UserSeconds: float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6,
		SysSeconds:  float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6,
		MaxRSSKB:    int64(ru.Maxrss),
		Goroutines:  runtime.NumGoroutine(),
	}
}

// waitForSignal blocks until SIGINT or SIGTERM.
func waitForSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	<-c
}
