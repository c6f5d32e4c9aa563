#!/usr/bin/env python3
"""One load point of pprofd's cost benchmark (bench/run.sh drives it).

Starts, all on 127.x addresses:
  * the target simulator (bench/sim serve): one listener per target, each on its own IP
    127.1.B.C:6060, serving real Go profiles recorded by `sim record` (cumulative series that grow
    between scrapes, so deltas are real); sharded over several processes to stay within the
    file-descriptor limit;
  * the Kubernetes API fake (tests/support/fake_apiserver.py) holding one annotated pod per
    target, pod IP = the target's IP;
  * the fast sink receiver (bench/sim receive), standing in for Pyroscope's push API;
  * pprofd with Kubernetes discovery and the Pyroscope sink.
Waits until every target is discovered, lets one interval pass (cumulative types only set their
baseline on the first scrape), then measures a window of whole intervals and writes one JSON
record with pprofd's CPU, RSS, rates, lateness and delivery-latency quantiles and per-stage CPU.

  loadtest.py --pprofd BIN --sim BIN --profiles DIR --targets N [--interval S] [--rate R]
              [--intervals K] [--sink pyroscope|file] [--out FILE] [--keep] [--wrap CMD]
"""

import argparse
import json
import math
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE = pathlib.Path(__file__).resolve().parents[1]
PROFILE_TYPES = 5  # process_cpu, memory, goroutine, mutex, block (pprofd's defaults)
TARGETS_PER_SIM = 5000  # a listener and a connection per target: 10k fds per simulator process
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_for_line(proc, want, timeout, what):
    """Reads the child's stdout until a line starting with `want`; returns that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited with {proc.returncode} before it was ready")
            continue
        line = line.decode(errors="replace").strip()
        if line.startswith(want):
            return line
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def wait_until(predicate, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


# ---- /proc readings


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid):
    """CPU seconds per thread name (pprofd names its threads pprofd-io / pprofd-work)."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def rss_kib(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return rss, hwm


# ---- Prometheus text


def parse_metrics(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            samples[key] = float(value)
        except ValueError:
            pass
    return samples


def series(samples, name):
    """{labels-string: value} for one metric name."""
    out = {}
    for key, value in samples.items():
        if key == name:
            out[""] = value
        elif key.startswith(name + "{"):
            out[key[len(name) + 1 : -1]] = value
    return out


def total(samples, name, **labels):
    return sum(v for k, v in series(samples, name).items()
               if all(f'{lk}="{lv}"' in k for lk, lv in labels.items()))


def label(key, name):
    m = re.search(name + r'="([^"]*)"', key)
    return m.group(1) if m else ""


def histogram_quantile(q, before, after, name, **labels):
    """Quantile of the observations made between two scrapes, interpolated within a bucket."""
    buckets = {}
    for key, value in series(after, name + "_bucket").items():
        if not all(f'{lk}="{lv}"' in key for lk, lv in labels.items()):
            continue
        le = label(key, "le")
        bound = math.inf if le == "+Inf" else float(le)
        prior = series(before, name + "_bucket").get(key, 0.0)
        buckets[bound] = buckets.get(bound, 0.0) + value - prior
    if not buckets:
        return None
    bounds = sorted(buckets)
    count = buckets[bounds[-1]]
    if count <= 0:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: report its bound
            width = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / width if width > 0 else 1.0)
        lower, below = bound, buckets[bound]
    return lower


# ---- the run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pprofd", required=True)
    ap.add_argument("--sim", required=True, help="bench/sim binary")
    ap.add_argument("--profiles", required=True, help="directory written by `sim record`")
    ap.add_argument("--targets", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000.0,
                    help="profiles/s to aim at; sets the interval (default 1000)")
    ap.add_argument("--interval", type=float, default=0,
                    help="scrape interval in seconds (default: targets*5/rate, at least 4)")
    ap.add_argument("--intervals", type=int, default=2, help="measured intervals (default 2)")
    ap.add_argument("--out", default="", help="append the JSON result to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--sink", choices=["pyroscope", "file"], default="pyroscope",
                    help="file: write to a local directory instead of pushing (its own thread), which "
                         "leaves only scraping on pprofd's I/O thread")
    ap.add_argument("--wrap", default="", help="command prefix for pprofd, e.g. 'heaptrack -o FILE'")
    args = ap.parse_args()

    n = args.targets
    interval = args.interval or max(4.0, math.ceil(n * PROFILE_TYPES / args.rate))
    interval = int(math.ceil(interval))
    cpu_duration = max(1, min(10, interval // 2))
    work = pathlib.Path(tempfile.mkdtemp(prefix="pprofd-bench-"))
    children = []

    def start(name, argv, **kw):
        log = open(work / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=kw.pop("stdout", log), stderr=log, start_new_session=True,
                                cwd=work, **kw)
        children.append(proc)
        return proc

    try:
        t0 = time.monotonic()
        # Simulator shards.
        for first in range(0, n, TARGETS_PER_SIM):
            count = min(TARGETS_PER_SIM, n - first)
            sim = start(f"sim-{first}", [args.sim, "serve", "-dir", args.profiles, "-first", str(first),
                                         "-count", str(count), "-port", "6060"], stdout=subprocess.PIPE)
            wait_for_line(sim, "ready", 120, f"simulator shard {first}")
        # Receiver.
        recv_port = free_port()
        recv = start("receiver", [args.sim, "receive", "-listen", f"127.0.0.1:{recv_port}"],
                     stdout=subprocess.PIPE)
        wait_for_line(recv, "ready", 30, "receiver")
        # Kubernetes API fake, one annotated pod per target.
        control = free_port()
        api = start("apiserver", [sys.executable, str(SOURCE / "tests/support/fake_apiserver.py"),
                                  "--port", "0", "--control-port", str(control), "--certs", str(work / "certs"),
                                  "--token-file", str(work / "token"), "--kubeconfig-out", str(work / "kubeconfig"),
                                  "--history-cap", str(max(10000, 2 * n))], stdout=subprocess.PIPE)
        wait_for_line(api, "ready", 60, "fake API server")
        template = {"labels": {"app": "bench"}, "phase": "Running", "ready": True, "nodeName": "node-1",
                    "annotations": {"pyroscope.io/scrape": "true", "pyroscope.io/port": "6060"},
                    "containers": [{"name": "app", "image": "bench", "ports": [6060]}]}
        for first in range(0, n, 1000):
            http(f"http://127.0.0.1:{control}/pods/bulk",
                 {"count": min(1000, n - first), "start": first, "namespace": "bench", "prefix": "app-",
                  "template": template, "sim_ips": True}, timeout=300)
        # pprofd.
        admin = free_port()
        sink = (f'{{name: pyroscope, type: pyroscope, url: "http://127.0.0.1:{recv_port}"}}'
                if args.sink == "pyroscope" else
                f'{{name: local, type: file, dir: "{work / "profiles"}", max_bytes: 256MiB}}')
        (work / "pprofd.yaml").write_text(f"""scrape:
  interval: {interval}s
  cpu_duration: {cpu_duration}s
  timeout: 10s
discovery:
  kubernetes:
    enabled: true
    kubeconfig: "{work / 'kubeconfig'}"
sinks:
  - {sink}
server:
  listen_address: 127.0.0.1:{admin}
shutdown_timeout: 5s
""")
        pprofd = start("pprofd", args.wrap.split() + [args.pprofd, "run", f"--config.file={work / 'pprofd.yaml'}", "--log.level=warn"])
        metrics_url = f"http://127.0.0.1:{admin}/metrics"

        def scrape():
            text = http(metrics_url, timeout=30).decode()
            (work / "metrics.txt").write_text(text)  # the last one is kept with --keep
            return parse_metrics(text)

        def all_discovered():
            try:
                return total(scrape(), "pprofd_targets", state="active") >= n
            except OSError:
                return False

        wait_until(all_discovered, 120 + n / 100, f"{n} targets discovered")
        setup = time.monotonic() - t0
        # Warm-up: every loop scrapes once (cumulative types set their baseline), plus the CPU pull.
        time.sleep(interval + cpu_duration + 2)

        window = args.intervals * interval
        before, cpu0, threads0, t_start = scrape(), cpu_seconds(pprofd.pid), thread_cpu(pprofd.pid), time.monotonic()
        recv0 = json.loads(http(f"http://127.0.0.1:{recv_port}/stats"))
        rss_samples = []
        while time.monotonic() - t_start < window:
            rss_samples.append(rss_kib(pprofd.pid)[0])
            time.sleep(1)
        after, cpu1, threads1, t_end = scrape(), cpu_seconds(pprofd.pid), thread_cpu(pprofd.pid), time.monotonic()
        recv1 = json.loads(http(f"http://127.0.0.1:{recv_port}/stats"))
        rss_now, rss_peak = rss_kib(pprofd.pid)
        elapsed = t_end - t_start

        def delta(name, **labels):
            return total(after, name, **labels) - total(before, name, **labels)

        cpu = cpu1 - cpu0
        forwarded = delta("pprofd_sink_sent_profiles_total")
        by_result = {}
        for k, v in series(after, "pprofd_scrapes_total").items():
            result = label(k, "result")
            by_result[result] = by_result.get(result, 0.0) + v - series(before, "pprofd_scrapes_total").get(k, 0.0)
        stages = {label(k, "stage"): v - series(before, "pprofd_stage_cpu_seconds_total").get(k, 0.0)
                  for k, v in series(after, "pprofd_stage_cpu_seconds_total").items()}
        threads = {name: threads1.get(name, 0.0) - threads0.get(name, 0.0) for name in threads1}
        rss_samples.sort()
        result = {
            "targets": n,
            "sink": args.sink,
            "interval_s": interval,
            "cpu_duration_s": cpu_duration,
            "window_s": round(elapsed, 1),
            "setup_s": round(setup, 1),
            "scrapes_per_s": round(sum(by_result.values()) / elapsed, 1),
            "scrape_results": {k: int(v) for k, v in sorted(by_result.items())},
            "profiles_forwarded_per_s": round(forwarded / elapsed, 1),
            "receiver_profiles_per_s": round((recv1["profiles"] - recv0["profiles"]) / elapsed, 1),
            "receiver_requests_per_s": round((recv1["requests"] - recv0["requests"]) / elapsed, 1),
            "dropped": int(delta("pprofd_sink_dropped_profiles_total")),
            "cpu_cores": round(cpu / elapsed, 3),
            "cpu_s_per_1000_profiles": round(1000 * cpu / forwarded, 3) if forwarded else None,
            "profiles_per_core_s": round(forwarded / cpu, 1) if cpu else None,
            "rss_steady_mib": round(rss_samples[len(rss_samples) // 2] / 1024, 1),
            "rss_peak_mib": round(rss_peak / 1024, 1),
            "rss_end_mib": round(rss_now / 1024, 1),
            "delta_state_mib": round(total(after, "pprofd_delta_state_bytes") / 2**20, 2),
            "lateness_p50_s": histogram_quantile(0.5, before, after, "pprofd_scrape_lateness_seconds"),
            "lateness_p99_s": histogram_quantile(0.99, before, after, "pprofd_scrape_lateness_seconds"),
            "delivery_latency_p50_s": histogram_quantile(0.5, before, after, "pprofd_delivery_latency_seconds"),
            "delivery_latency_p99_s": histogram_quantile(0.99, before, after, "pprofd_delivery_latency_seconds"),
            "stage_cpu_s_per_1000_profiles": {k: round(1000 * v / forwarded, 4) for k, v in sorted(stages.items())}
            if forwarded else {},
            "thread_cpu_s_per_1000_profiles": {k: round(1000 * v / forwarded, 4) for k, v in sorted(threads.items())}
            if forwarded else {},
            "bytes_scraped_per_profile": round(delta("pprofd_scrape_bytes_total") / max(1.0, sum(by_result.values()))),
            "bytes_sent_per_profile": round(delta("pprofd_sink_sent_bytes_total") / forwarded) if forwarded else None,
        }
        line = json.dumps(result)
        print(line)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
        return 0
    finally:
        # pprofd first (the last started), so it can flush to a receiver that is still there.
        for proc in reversed(children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if proc is children[-1]:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
        deadline = time.monotonic() + 10
        for proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
