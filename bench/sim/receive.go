package main

// sim receive: a fast stand-in for Pyroscope's push and ingest endpoints that only counts.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Pyroscope's default ingestion body limit.
const maxPushBytes = 256 << 20

type receiver struct {
	delay time.Duration
	began time.Time

	requests atomic.Int64 // push and ingest requests, good or bad
	pushes   atomic.Int64
	ingests  atomic.Int64
	series   atomic.Int64
	profiles atomic.Int64
	raw      atomic.Int64 // raw_profile bytes in pushes
	body     atomic.Int64 // request body bytes as received
	bad      atomic.Int64

	bufs sync.Pool // *bytes.Buffer
	gzs  sync.Pool // *gzip.Reader
}

func newReceiver(delay time.Duration) *receiver {
	return &receiver{delay: delay, began: time.Now(),
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/push.v1.PusherService/Push":
		rc.push(w, r)
	case "/ingest":
		rc.ingest(w, r)
	case "/stats":
		w.Header().Set("Content-Type", "application/json")
		w.Write(rc.statsJSON())
	default:
		http.NotFound(w, r)
	}
}

var hdrProto = []string{"application/proto"}

func (rc *receiver) push(w http.ResponseWriter, r *http.Request) {
	rc.requests.Add(1)
	rc.pushes.Add(1)
	if r.Method != http.MethodPost {
		rc.reject(w, http.StatusMethodNotAllowed, "push: POST only")
		return
	}
	// Connect unary accepts exactly application/<codec>; anything else is 415.
	if ct := r.Header.Get("Content-Type"); ct != "application/proto" {
		rc.reject(w, http.StatusUnsupportedMediaType, "push: Content-Type must be application/proto, got "+ct)
		return
	}
	buf := rc.bufs.Get().(*bytes.Buffer)
	defer rc.bufs.Put(buf)
	buf.Reset()
	n, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxPushBytes))
	rc.body.Add(n)
	if err != nil {
		rc.reject(w, http.StatusBadRequest, "push: reading body: "+err.Error())
		return
	}
	msg := buf.Bytes()
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		if msg, err = rc.gunzip(msg); err != nil {
			rc.reject(w, http.StatusBadRequest, "push: gzip: "+err.Error())
			return
		}
	default:
		rc.reject(w, http.StatusBadRequest, "push: unsupported Content-Encoding "+enc)
		return
	}
	c, err := parsePush(msg)
	if err != nil {
		rc.reject(w, http.StatusBadRequest, "push: body is not a push.v1.PushRequest: "+err.Error())
		return
	}
	rc.series.Add(int64(c.series))
	rc.profiles.Add(int64(c.profiles))
	rc.raw.Add(int64(c.raw))
	if !rc.wait(r) {
		return
	}
	w.Header()["Content-Type"] = hdrProto
	w.WriteHeader(http.StatusOK) // an empty PushResponse is zero bytes
}

func (rc *receiver) gunzip(b []byte) ([]byte, error) {
	var zr *gzip.Reader
	if v := rc.gzs.Get(); v != nil {
		zr = v.(*gzip.Reader)
		if err := zr.Reset(bytes.NewReader(b)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if zr, err = gzip.NewReader(bytes.NewReader(b)); err != nil {
			return nil, err
		}
	}
	defer rc.gzs.Put(zr)
	out, err := io.ReadAll(io.LimitReader(zr, maxPushBytes+1))
	if err == nil && len(out) > maxPushBytes {
		err = errors.New("decompressed body over the size limit")
	}
	return out, err
}

func (rc *receiver) ingest(w http.ResponseWriter, r *http.Request) {
	rc.requests.Add(1)
	rc.ingests.Add(1)
	if r.Method != http.MethodPost {
		rc.reject(w, http.StatusMethodNotAllowed, "ingest: POST only")
		return
	}
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxPushBytes))
	rc.body.Add(n)
	if err != nil {
		rc.reject(w, http.StatusBadRequest, "ingest: reading body: "+err.Error())
		return
	}
	rc.series.Add(1)
	rc.profiles.Add(1)
	if !rc.wait(r) {
		return
	}
	w.WriteHeader(http.StatusOK)
}

// wait applies -delay; false if the client went away meanwhile.
func (rc *receiver) wait(r *http.Request) bool {
	if rc.delay <= 0 {
		return true
	}
	t := time.NewTimer(rc.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (rc *receiver) reject(w http.ResponseWriter, code int, msg string) {
	rc.bad.Add(1)
	http.Error(w, msg, code)
}

func (rc *receiver) statsJSON() []byte {
	b, _ := json.Marshal(struct {
		Requests int64   `json:"requests"`
		Pushes   int64   `json:"pushes"`
		Ingests  int64   `json:"ingests"`
		Series   int64   `json:"series"`
		Profiles int64   `json:"profiles"`
		Raw      int64   `json:"raw_bytes"`
		Body     int64   `json:"body_bytes"`
		Bad      int64   `json:"bad_requests"`
		Uptime   float64 `json:"uptime_s"`
		Usage    rusage  `json:"process"`
	}{
		rc.requests.Load(), rc.pushes.Load(), rc.ingests.Load(), rc.series.Load(),
		rc.profiles.Load(), rc.raw.Load(), rc.body.Load(), rc.bad.Load(),
		time.Since(rc.began).Seconds(), getRusage(),
	})
	return append(b, '\n')
}

func runReceive(args []string) {
	fs := flag.NewFlagSet("receive", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:4040", "address to listen on")
	delay := fs.Duration("delay", 0, "latency added to every push/ingest request (e.g. 5ms)")
	fs.Parse(args)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("receive: %v", err)
	}
	srv := &http.Server{
		Handler:           newReceiver(*delay),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          newQuietLogger(&quietLog{}),
	}
	go func() { log.Fatalf("receive: %v", srv.Serve(ln)) }()
	fmt.Println("ready")
	waitForSignal()
}
