"""Delta correctness against `go tool pprof -diff_base`, on consecutive real profiles of the Go
demo app, including a target restart.

A small recording reverse proxy sits between pprofd and the demo app: it forwards every GET and
keeps each raw (cumulative) body it returns, so the test holds exactly the pairs pprofd diffed.
Each delta pprofd stored is paired with its raw scrapes through time_nanos: the delta carries the
newer raw profile's time_nanos, and its duration_nanos reaches back to the older one. Then, per
function, for every delta column (alloc_space and alloc_objects for memory, contentions and delay
for mutex and block):

    go tool pprof -diff_base=raw_k raw_k+1   ==   go tool pprof delta

and for inuse_space/inuse_objects, the delta equals raw_k+1 itself. Values are read from
`top` with nodecount/nodefraction lifted and `unit=bytes` / `unit=ns` (bytes as "123B",
nanoseconds as "123ns", counts bare), which prints exact integers instead of scaled figures like
"1.50MB"; anything else (a decimal point) fails the test rather than being rounded.
To keep the run short, each file costs a single `go tool pprof` process: the options and one
`top` per sample type are fed to its interactive mode on stdin.

The demo app is then killed and restarted on the same port behind the proxy: pprofd must not emit
a delta across the restart (counted as a reset), and no later delta may exceed what the new
process allocated in total.
"""

import concurrent.futures
import gzip
import http.client
import http.server
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from test_foundation import Base  # noqa: E402

DELTA_TYPES = {
    # __name__: (scrape path, delta columns, pass-through columns)
    "memory": ("/debug/pprof/allocs", ("alloc_objects", "alloc_space"), ("inuse_objects", "inuse_space")),
    "mutex": ("/debug/pprof/mutex", ("contentions", "delay"), ()),
    "block": ("/debug/pprof/block", ("contentions", "delay"), ()),
}
GO_ENV = dict(os.environ, GOTOOLCHAIN="local")


# --- a minimal profile.proto reader (time_nanos, duration_nanos, sample types, sample values) ---

def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf):
    """(field number, wire type, value) for each field of one message; value is an int for
    varints and fixed widths, bytes for length-delimited fields."""
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wire == 5:
            value, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def _ints(wire, value):
    """A repeated int64 field, packed or not."""
    if wire == 0:
        return [_signed(value)]
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(_signed(v))
    return out


def read_profile(path):
    data = pathlib.Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings, type_refs, samples = [], [], []
    time_nanos = duration_nanos = 0
    for field, wire, value in _fields(data):
        if field == 1:  # sample_type
            t = dict((f, v) for f, _, v in _fields(value))
            type_refs.append((t.get(1, 0), t.get(2, 0)))
        elif field == 2:  # sample
            values = []
            for f, w, v in _fields(value):
                if f == 2:
                    values.extend(_ints(w, v))
            samples.append(values)
        elif field == 6:
            strings.append(value.decode())
        elif field == 9:
            time_nanos = _signed(value)
        elif field == 10:
            duration_nanos = _signed(value)
    return {
        "sample_types": [strings[t] for t, _ in type_refs],
        "samples": samples,
        "time_nanos": time_nanos,
        "duration_nanos": duration_nanos,
    }


def column_total(profile, sample_type):
    idx = profile["sample_types"].index(sample_type)
    return sum(s[idx] for s in profile["samples"])


# --- go tool pprof: exact per-function flat and cum values ---

# Units pprof can print unscaled: "123B", "123ns"; counts are bare integers anyway.
_UNIT = {"alloc_space": "bytes", "inuse_space": "bytes", "delay": "ns"}
_TOP_HEADER = re.compile(r"^\s*flat\s+flat%\s+sum%\s+cum\s+cum%\s*$")
_NUMBER = re.compile(r"^(-?\d+)([A-Za-z]*)$")


def _exact(token, where):
    m = _NUMBER.match(token)
    if not m:
        raise AssertionError(f"{where}: value {token!r} is not an exact integer")
    return int(m.group(1))


def pprof_per_function(profile, sample_types, diff_base=None):
    """{sample_type: {function: (flat, cum)}} from `go tool pprof` `top`, zero entries removed."""
    script = ["nodecount=10000000", "nodefraction=0", "edgefraction=0"]
    for t in sample_types:
        script += [f"unit={_UNIT.get(t, 'count')}", f"sample_index={t}", "top"]
    argv = ["go", "tool", "pprof"]
    if diff_base:
        argv.append(f"-diff_base={diff_base}")
    argv.append(str(profile))
    result = subprocess.run(argv, input="\n".join(script) + "\nquit\n", capture_output=True, text=True,
                            timeout=120, env=GO_ENV)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stderr}")
    tables, current = [], None
    for line in result.stdout.splitlines():
        if _TOP_HEADER.match(line):
            current = {}
            tables.append(current)
            continue
        if current is None:
            continue
        if line.startswith("(pprof)") or not line.strip():
            current = None
            continue
        parts = line.split(None, 5)
        if len(parts) < 6:
            raise AssertionError(f"unexpected top line {line!r} from {' '.join(argv)}")
        where = f"{profile} ({diff_base})"
        flat, cum = _exact(parts[0], where), _exact(parts[3], where)
        old = current.get(parts[5], (0, 0))  # one name can be several nodes (e.g. two files)
        current[parts[5]] = (old[0] + flat, old[1] + cum)
    if len(tables) != len(sample_types):
        raise AssertionError(f"expected {len(sample_types)} top tables from {' '.join(argv)}, "
                             f"got {len(tables)}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return {t: {f: v for f, v in table.items() if v != (0, 0)} for t, table in zip(sample_types, tables)}


# --- the recording reverse proxy ---

class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        rec = self.server.recorder
        # Read before connecting: the test bumps the epoch only once the old process is dead and
        # before the new one starts, so a request that saw epoch e is answered by process e.
        epoch = rec.epoch
        try:
            conn = http.client.HTTPConnection(rec.upstream_host, rec.upstream_port, timeout=10)
            conn.request("GET", self.path)
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
            ctype = resp.getheader("Content-Type", "application/octet-stream")
            conn.close()
        except OSError as e:
            status, body, ctype = 502, f"proxy: upstream: {e}\n".encode(), "text/plain"
        if status == 200:
            rec.record(self.path.split("?", 1)[0], epoch, body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Recorder:
    def __init__(self, directory, upstream):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        host, port = upstream.rsplit(":", 1)
        self.upstream_host, self.upstream_port = host, int(port)
        self.epoch = 0
        self.lock = threading.Lock()
        self.records = []  # dicts: seq, path, epoch, file

    def record(self, path, epoch, body):
        with self.lock:
            seq = len(self.records)
            name = f"{seq:05d}-{path.strip('/').replace('/', '_')}.pb.gz"
            (self.dir / name).write_bytes(body)
            self.records.append({"seq": seq, "path": path, "epoch": epoch, "file": self.dir / name})

    def count(self, path, epoch):
        with self.lock:
            return sum(1 for r in self.records if r["path"] == path and r["epoch"] == epoch)


def start_proxy(recorder):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    server.recorder = recorder
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_demo_on(procs, name, address):
    proc = procs.start(name, [h.demo_app_binary(), "-listen", address, "-name", name])
    h.wait_until(lambda: h.http_get(f"http://{address}/debug/pprof/")[0] == 200 or proc.poll() is not None,
                 20, what=f"demo app {name}")
    if proc.poll() is not None:
        raise AssertionError(f"demo app {name} exited:\n" + procs.log_of(proc))
    return proc


class DeltaTest(Base):
    SCRAPES_BEFORE_RESTART = 4  # per type: 3 deltas
    SCRAPES_AFTER_RESTART = 3   # per type: the reset, then 2 deltas

    def setUp(self):
        super().setUp()
        self.proxy = None

    def tearDown(self):
        if self.proxy:
            self.proxy.shutdown()
            self.proxy.server_close()
        super().tearDown()

    def wait_scrapes(self, rec, epoch, n, timeout):
        paths = [p for p, _, _ in DELTA_TYPES.values()]
        h.wait_until(lambda: all(rec.count(p, epoch) >= n for p in paths), timeout, interval=0.2,
                     what=f"{n} raw scrapes of every delta type from demo process {epoch}")

    def test_deltas_match_go_tool_pprof_diff_base(self):
        app_address = f"127.0.0.1:{h.free_port()}"
        start_demo_on(self.procs, "demo-0", app_address)
        rec = Recorder(self.tmp / "raw", app_address)
        self.proxy = start_proxy(rec)
        proxy_address = f"127.0.0.1:{self.proxy.server_address[1]}"
        out = self.tmp / "profiles"
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 2s, timeout: 1500ms}}
profiles:
  process_cpu: {{enabled: false}}
  goroutine: {{enabled: false}}
discovery:
  static:
    - targets: ["{proxy_address}"]
      labels: {{service_name: delta-demo}}
sinks:
  - {{name: local, type: file, dir: "{out}"}}
""")
        pprofd = h.start_pprofd(self.procs, config)
        with self.logs_on_failure():
            self.wait_scrapes(rec, 0, self.SCRAPES_BEFORE_RESTART, 20)
            before = h.metrics_text(pprofd)
            # Restart the target on the same address; the proxy keeps forwarding to it.
            old = self.procs.children[0]
            os.killpg(old.pid, signal.SIGKILL)
            old.wait(timeout=10)
            rec.epoch = 1
            start_demo_on(self.procs, "demo-1", app_address)
            self.wait_scrapes(rec, 1, self.SCRAPES_AFTER_RESTART, 20)
            after = h.metrics_text(pprofd)
            code, _ = h.stop(pprofd, 15)
        self.assertEqual(code, 0)

        # Every first profile of a process only (re-)seeds a baseline: one per type for the start
        # and one per type for the restart (a reset, or a first if pprofd dropped the state).
        def seeded(text):
            return (h.metric_sum(text, "pprofd_delta_total", result="first") +
                    h.metric_sum(text, "pprofd_delta_total", result="reset"))
        self.assertGreaterEqual(seeded(before), len(DELTA_TYPES), before)
        self.assertGreaterEqual(seeded(after) - seeded(before), len(DELTA_TYPES),
                                "the restart did not re-seed every delta baseline")
        self.assertGreaterEqual(h.metric_sum(after, "pprofd_delta_total", result="emitted"), 1)

        raws = {}  # path -> [record + parsed profile], in scrape order
        for r in rec.records:
            r["profile"] = read_profile(r["file"])
            raws.setdefault(r["path"], []).append(r)

        stored = h.stored_profiles(out)
        comparisons = []  # (name, delta path, older raw, newer raw, post-restart)
        for name, (path, delta_cols, pass_cols) in DELTA_TYPES.items():
            series = raws[path]
            by_time = {r["profile"]["time_nanos"]: i for i, r in enumerate(series)}
            self.assertEqual(len(by_time), len(series), f"{path}: two raw scrapes share a time_nanos")
            deltas = [(p, s) for p, s in stored if s["labels"]["__name__"] == name]
            self.assertTrue(deltas, f"no {name} delta stored")
            paired = set()
            for delta_path, sidecar in deltas:
                delta = read_profile(delta_path)
                self.assertEqual(sidecar["labels"].get("__delta__"), "false", delta_path)
                self.assertEqual(sidecar["time_nanos"], delta["time_nanos"], delta_path)
                self.assertEqual(sidecar["duration_nanos"], delta["duration_nanos"], delta_path)
                # The delta's time is the newer raw scrape's, and its duration reaches back to the
                # time of the older one: that names exactly the pair pprofd diffed (normally k and
                # k+1; a scrape pprofd gave up on, while the proxy still recorded it, is skipped).
                k1 = by_time.get(delta["time_nanos"])
                self.assertIsNotNone(k1, f"{delta_path}: no raw scrape with time_nanos {delta['time_nanos']}")
                k0 = by_time.get(delta["time_nanos"] - delta["duration_nanos"])
                self.assertIsNotNone(k0, f"{delta_path}: duration_nanos {delta['duration_nanos']} does not "
                                         f"lead back to a raw scrape")
                self.assertLess(k0, k1, delta_path)
                newer, older = series[k1], series[k0]
                self.assertEqual(newer["epoch"], older["epoch"],
                                 f"{delta_path}: a delta across the target restart was emitted")
                self.assertEqual(delta["sample_types"], newer["profile"]["sample_types"], delta_path)
                for sample in delta["samples"]:
                    self.assertTrue(all(v >= 0 for v in sample), f"{delta_path}: negative value {sample}")
                    self.assertTrue(any(v != 0 for v in sample), f"{delta_path}: all-zero sample kept")
                # No spike: a delta never holds more than its process has done in total.
                for col in delta_cols:
                    self.assertLessEqual(column_total(delta, col), column_total(newer["profile"], col),
                                         f"{delta_path}: {col} exceeds the newer raw profile's total")
                paired.add(k1)
                comparisons.append((name, delta_path, older, newer, newer["epoch"] == 1))
            # Nearly every raw scrape that is not the first of its process got its delta stored:
            # allow one miss per process (the very last scrape may still have been in flight when
            # pprofd stopped, or one scrape may have timed out in pprofd on a loaded machine).
            for epoch in (0, 1):
                scraped = [i for i, r in enumerate(series) if r["epoch"] == epoch]
                emitted = [i for i in paired if series[i]["epoch"] == epoch]
                self.assertGreaterEqual(len(emitted), len(scraped) - 2,
                                        f"{name}: process {epoch} was scraped at {scraped}, but only "
                                        f"{sorted(emitted)} have a stored delta")
                self.assertTrue(emitted, f"{name}: no delta stored for demo process {epoch}")
        # The per-function comparison with go tool pprof, two pprof processes per delta.
        def compare(item):
            name, delta_path, older, newer, _ = item
            _, delta_cols, pass_cols = DELTA_TYPES[name]
            cols = delta_cols + pass_cols
            got = pprof_per_function(delta_path, cols)
            want = pprof_per_function(newer["file"], delta_cols, diff_base=older["file"])
            if pass_cols:
                want.update(pprof_per_function(newer["file"], pass_cols))
            return item, got, want

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(compare, comparisons))
        checked = 0
        for (name, delta_path, older, newer, _), got, want in results:
            for col in got:
                self.assertEqual(got[col], want[col],
                                 f"{name} {col}: per-function (flat, cum) of {delta_path} differ from "
                                 f"go tool pprof -diff_base={older['file']} {newer['file']}")
                checked += 1
            self.assertTrue(got[DELTA_TYPES[name][1][0]] or name != "memory",
                            f"{delta_path}: empty memory delta")
        self.assertGreaterEqual(len(comparisons), 3 * len(DELTA_TYPES))
        print(f"compared {len(comparisons)} deltas ({checked} columns) with go tool pprof -diff_base; "
              f"{sum(1 for c in comparisons if c[4])} after the restart", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
