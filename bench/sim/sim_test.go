package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Hand-built protobuf encoding, independent of the parser under test.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendField(b []byte, field int, payload []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|wireBytes)
	b = appendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

func labelPair(name, value string) []byte {
	return appendField(appendField(nil, 1, []byte(name)), 2, []byte(value))
}

func rawSample(profile []byte, id string) []byte {
	return appendField(appendField(nil, 1, profile), 2, []byte(id))
}

// pushRequest builds a PushRequest with the given number of profiles (of the given sizes) per
// series.
func pushRequest(series ...[]int) []byte {
	var req []byte
	for si, sizes := range series {
		var s []byte
		s = appendField(s, 1, labelPair("__name__", "process_cpu"))
		s = appendField(s, 1, labelPair("service_name", "svc-"+string(rune('a'+si))))
		for _, n := range sizes {
			s = appendField(s, 2, rawSample(bytes.Repeat([]byte{0x1f}, n), "0f8fad5b-d9cb-469f-a165-70867728950e"))
		}
		req = appendField(req, 1, s)
	}
	return req
}

func TestParsePush(t *testing.T) {
	req := pushRequest([]int{100}, []int{7, 300}, nil)
	// An unknown varint field at the top level and in a series is skipped.
	req = append(req, 0x20, 0x05)
	c, err := parsePush(req)
	if err != nil {
		t.Fatal(err)
	}
	if c != (pushCounts{series: 3, profiles: 3, raw: 407}) {
		t.Fatalf("got %+v", c)
	}
	if c, err := parsePush(nil); err != nil || c != (pushCounts{}) {
		t.Fatalf("empty request: %+v, %v", c, err)
	}
	bad := map[string][]byte{
		"truncated":          req[:len(req)-5],
		"series as varint":   {0x08, 0x01},
		"bad nested":         appendField(nil, 1, []byte{0x12, 0x05, 0x00}),
		"label as varint":    appendField(nil, 1, []byte{0x08, 0x00}),
		"sample id varint":   appendField(nil, 1, appendField(nil, 2, []byte{0x10, 0x01})),
		"field zero":         {0x02, 0x00},
		"group":              {0x0b},
		"overlong varint":    {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"length past end":    {0x0a, 0x7f, 0x00},
		"text, not protobuf": []byte("hello, world"),
	}
	for name, b := range bad {
		if _, err := parsePush(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestReceiver(t *testing.T) {
	rc := newReceiver(0)
	srv := httptest.NewServer(rc)
	defer srv.Close()

	post := func(path, ct string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	req := pushRequest([]int{10, 20}, []int{30})
	resp := post("/push.v1.PusherService/Push", "application/proto", req, "Connect-Protocol-Version", "1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/proto" || resp.ContentLength != 0 {
		t.Fatalf("push: %d %q len %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(req)
	zw.Close()
	if resp := post("/push.v1.PusherService/Push", "application/proto", gz.Bytes(), "Content-Encoding", "gzip"); resp.StatusCode != 200 {
		t.Fatalf("gzipped push: %d", resp.StatusCode)
	}
	if resp := post("/push.v1.PusherService/Push", "application/proto", []byte("not protobuf")); resp.StatusCode != 400 {
		t.Fatalf("bad push: %d", resp.StatusCode)
	}
	if resp := post("/push.v1.PusherService/Push", "application/json", req); resp.StatusCode != 415 {
		t.Fatalf("json push: %d", resp.StatusCode)
	}
	if resp := post("/ingest?name=svc&from=1&until=2", "multipart/form-data; boundary=x", []byte("0123456789")); resp.StatusCode != 200 {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}

	r, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"requests": 5, "series": 2 + 2 + 1, "profiles": 3 + 3 + 1, "raw_bytes": 120,
		"body_bytes":   float64(len(req) + gz.Len() + len("not protobuf") + 10),
		"bad_requests": 2, // the 415 is rejected before its body is read
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("stats %s = %v, want %v", k, st[k], v)
		}
	}
}

func TestTargetIP(t *testing.T) {
	for i, want := range map[int]string{
		0: "127.1.0.1", 249: "127.1.0.250", 250: "127.1.1.1", 62499: "127.1.249.250",
		62500: "127.2.0.1", maxTargets - 1: "127.254.249.250",
	} {
		if got := targetIP(i); got != want {
			t.Errorf("targetIP(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestQuerySeconds(t *testing.T) {
	for q, want := range map[string]int{
		"": 30, "seconds=15": 15, "gc=1&seconds=2": 2, "seconds=0": 30, "seconds=x": 30, "xseconds=5": 30,
	} {
		if got := querySeconds(q, 30); got != want {
			t.Errorf("querySeconds(%q) = %d, want %d", q, got, want)
		}
	}
}

func TestTargetWalksSeries(t *testing.T) {
	s := &simulator{}
	for k := range kindNames {
		for i := 0; i < 5; i++ {
			s.profiles[k] = append(s.profiles[k], []byte{byte(k), byte(i)})
		}
	}
	tg := &target{sim: s, offset: 2}
	get := func(path string) (int, []byte, http.Header) {
		w := httptest.NewRecorder()
		tg.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.Bytes(), w.Header()
	}
	var seen []byte
	for i := 0; i < 5; i++ {
		code, body, h := get("/debug/pprof/heap?gc=1")
		if code != 200 || h.Get("Content-Type") != "application/octet-stream" || body[0] != kindHeap {
			t.Fatalf("heap: %d %v %v", code, body, h)
		}
		seen = append(seen, body[1])
	}
	if !bytes.Equal(seen, []byte{2, 3, 4, 4, 4}) {
		t.Fatalf("heap series %v, want [2 3 4 4 4]", seen)
	}
	if _, body, _ := get("/debug/pprof/mutex"); body[0] != kindMutex || body[1] != 2 {
		t.Fatalf("mutex counter not separate: %v", body)
	}
	if code, body, h := get("/debug/pprof/profile?seconds=1"); code != 200 || body[0] != kindCPU ||
		h.Get("Content-Disposition") != `attachment; filename="profile"` {
		t.Fatalf("cpu: %d %v %v", code, body, h)
	}
	// A client that goes away gets nothing and is counted.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	tg.ServeHTTP(w, httptest.NewRequest("GET", "/debug/pprof/profile?seconds=60", nil).WithContext(ctx))
	if w.Body.Len() != 0 || s.cpuAborted.Load() != 1 {
		t.Fatalf("aborted cpu: %d bytes, %d aborted", w.Body.Len(), s.cpuAborted.Load())
	}
	if code, _, _ := get("/debug/pprof/"); code != 404 {
		t.Fatalf("index: %d, want 404", code)
	}
}
