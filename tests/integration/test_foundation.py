"""Integration tests for the foundation: the real pprofd binary against the real Go demo app,
fault-injecting targets, real Prometheus, and `go tool pprof` reading what pprofd stored."""

import contextlib
import gzip
import http.server
import json
import signal
import urllib.request
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

ALL_TYPES = ("process_cpu", "memory", "goroutine", "mutex", "block")


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pprofd-it-"))
        self.procs = h.Processes(self.tmp)

    def tearDown(self):
        self.procs.close()
        if not os.environ.get("PPROFD_KEEP_TEST_DIRS"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept {self.tmp}", file=sys.stderr)

    def dump_logs(self):
        for proc in self.procs.children:
            print(f"--- {proc.log_path}\n{self.procs.log_of(proc)[-4000:]}", file=sys.stderr)

    @contextlib.contextmanager
    def logs_on_failure(self):
        """A failed check inside prints every child's log tail before it propagates."""
        try:
            yield
        except AssertionError:
            self.dump_logs()
            raise


class CollectTest(Base):
    def test_collects_every_type_from_real_go_apps(self):
        a = h.start_demo_app(self.procs, "app-a")
        b = h.start_demo_app(self.procs, "app-b")
        out = self.tmp / "profiles"
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 2s, timeout: 2s}}
discovery:
  static:
    - targets: ["{a}"]
      labels: {{service_name: svc-a, team: blue}}
    - targets: ["{b}"]
scrape_extra: null
""".replace("scrape_extra: null\n", "") + f"""
sinks:
  - {{name: local, type: file, dir: "{out}"}}
""")
        pprofd = h.start_pprofd(self.procs, config)
        with self.logs_on_failure():
            # Memory, mutex and block need two scrapes (the first only seeds the delta baseline).
            def complete():
                names = {(s["labels"]["instance"], s["labels"]["__name__"]) for _, s in h.stored_profiles(out)}
                return all((inst, t) in names for inst in (a, b) for t in ALL_TYPES)
            h.wait_until(complete, 25, interval=0.5, what="every profile type from both apps")
            code, took = h.stop(pprofd, 15)
        self.assertEqual(code, 0)

        stored = h.stored_profiles(out)
        self.assertGreaterEqual(len(stored), 10)
        expected_types = {
            "process_cpu": ["cpu", "nanoseconds"],
            "memory": ["alloc_space", "bytes"],
            "goroutine": ["goroutine", "count"],
            "mutex": ["delay", "nanoseconds"],
            "block": ["contentions", "count"],
        }
        for path, sidecar in stored:
            labels = sidecar["labels"]
            name = labels["__name__"]
            self.assertIn(expected_types[name], sidecar["sample_types"], path)
            self.assertTrue(path.read_bytes().startswith(b"\x1f\x8b"), path)
            self.assertGreater(sidecar["time_nanos"], 1_600_000_000 * 10**9)
            if labels["instance"] == a:
                self.assertEqual(labels["service_name"], "svc-a")
                self.assertEqual(labels["team"], "blue")
                self.assertEqual(path.parts[-3], "svc-a")
            else:
                self.assertEqual(labels["service_name"], "unknown_service")
            self.assertEqual(path.parts[-2], name)
            if name in ("memory", "mutex", "block"):
                self.assertEqual(labels.get("__delta__"), "false")
                self.assertGreater(sidecar["duration_nanos"], 0)
            else:
                self.assertNotIn("__delta__", labels)
            self.assertTrue(sidecar["target"].startswith("http://127.0.0.1:"))
        # `go tool pprof` reads every stored file.
        for path, _ in stored:
            result = h.go_pprof_raw(path)
            self.assertEqual(result.returncode, 0, f"{path}: {result.stderr}")
        cpu = next(p for p, s in stored if s["labels"]["__name__"] == "process_cpu")
        top = subprocess.run(["go", "tool", "pprof", "-top", str(cpu)], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, GOTOOLCHAIN="local"))
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertIn("main.", top.stdout)


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "html"

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode = self.server.mode
        try:
            if mode == "html":
                self._reply(200, "text/html", b"<!doctype html><html><body>not pprof</body></html>")
            elif mode == "empty":
                self._reply(200, "application/octet-stream", b"")
            elif mode == "garbage_gzip":
                self._reply(200, "application/octet-stream", gzip.compress(os.urandom(4096)))
            elif mode == "error500":
                self._reply(500, "text/plain", b"Could not enable CPU profiling: cpu profiling already in use\n")
            elif mode == "huge":
                # Announces 200 MB; pprofd must refuse from the header, not read it.
                self.send_response(200)
                self.send_header("Content-Length", str(200 << 20))
                self.end_headers()
                chunk = b"\0" * (1 << 20)
                for _ in range(200):
                    self.wfile.write(chunk)
            elif mode == "huge_chunked":
                # 200 MB without a length: pprofd must stop reading at its limit.
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\x07" * (1 << 20)
                for _ in range(200):
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_fault_server(mode):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultHandler)
    server.daemon_threads = True
    server.mode = mode
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class BadTargetsTest(Base):
    def test_each_bad_answer_costs_one_failed_scrape_and_nothing_else(self):
        modes = ["html", "empty", "garbage_gzip", "error500", "huge", "huge_chunked"]
        servers = {m: start_fault_server(m) for m in modes}
        # A socket that listens but never accepts: the kernel completes the handshake, then silence.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        good = h.start_demo_app(self.procs, "good")
        out = self.tmp / "profiles"
        groups = "".join(
            f'    - {{targets: ["127.0.0.1:{s.server_address[1]}"], labels: {{service_name: {m}}}}}\n'
            for m, s in servers.items())
        groups += f'    - {{targets: ["127.0.0.1:{silent.getsockname()[1]}"], labels: {{service_name: silent}}}}\n'
        groups += f'    - {{targets: ["{good}"], labels: {{service_name: good}}}}\n'
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 2s, timeout: 1s, body_size_limit: 8MiB}}
profiles:
  process_cpu: {{enabled: false}}
  memory: {{enabled: false}}
  mutex: {{enabled: false}}
  block: {{enabled: false}}
discovery:
  static:
{groups}
sinks:
  - {{name: local, type: file, dir: "{out}"}}
""")
        pprofd = h.start_pprofd(self.procs, config)
        try:
            def every_target_scraped_twice():
                text = h.metrics_text(pprofd)
                # The two oversized targets answer slowest: wait for their second round explicitly,
                # not only for a total that the fast targets can fill up first.
                return (h.metric_sum(text, "pprofd_scrapes_total") >= 2 * (len(modes) + 2)
                        and h.metric_sum(text, "pprofd_scrapes_total", result="too_large") >= 4)
            h.wait_until(every_target_scraped_twice, 20, interval=0.5, what="two rounds of scrapes")
            text = h.metrics_text(pprofd)
            status, body = h.http_get(pprofd.base_url + "/api/v1/targets")
        except AssertionError:
            self.dump_logs()
            raise
        finally:
            silent.close()
            for s in servers.values():
                s.shutdown()
        self.assertEqual(status, 200)
        import json
        targets = {t["labels"]["service_name"]: t for t in json.loads(body)["data"]["activeTargets"]}
        expected = {
            "html": ("invalid", "not a pprof profile"),
            "empty": ("invalid", "empty body"),
            "garbage_gzip": ("invalid", "not a pprof profile"),
            "error500": ("http_error", "HTTP 500"),
            "huge": ("too_large", ""),
            "huge_chunked": ("too_large", ""),
            "silent": ("timeout", ""),
        }
        for service, (result, error_text) in expected.items():
            loop = targets[service]["profiles"][0]
            self.assertEqual(loop["health"], "down", service)
            self.assertIn(error_text, loop["lastError"], service)
        self.assertEqual(targets["good"]["profiles"][0]["health"], "up")
        for result in ("invalid", "http_error", "too_large", "timeout", "success"):
            self.assertGreater(h.metric_sum(text, "pprofd_scrapes_total", result=result), 0, result)
        self.assertGreaterEqual(h.metric_sum(text, "pprofd_scrapes_total", result="too_large"), 4)
        # Nothing from a bad target reached the sink; the good one kept flowing.
        services = {s["labels"]["service_name"] for _, s in h.stored_profiles(out)}
        self.assertEqual(services, {"good"})
        # A 200 MB answer never sits in memory: peak RSS stays far below it. (Under ASan, shadow
        # memory and the allocator's quarantine make RSS meaningless, so only there it is skipped.)
        if not os.environ.get("PPROFD_SANITIZED"):
            self.assertLess(h.rss_peak_kib(pprofd.pid), 120 * 1024)
        code, _ = h.stop(pprofd, 15)
        self.assertEqual(code, 0)


class ShutdownTest(Base):
    def test_sigterm_during_a_cpu_pull_exits_zero_within_shutdown_timeout(self):
        app = h.start_demo_app(self.procs, "app")
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 15s, cpu_duration: 14s}}
profiles:
  memory: {{enabled: false}}
  goroutine: {{enabled: false}}
  mutex: {{enabled: false}}
  block: {{enabled: false}}
discovery:
  static:
    - targets: ["{app}"]
sinks:
  - {{name: local, type: file, dir: "{self.tmp / 'profiles'}"}}
shutdown_timeout: 3s
""")
        pprofd = h.start_pprofd(self.procs, config)
        with self.logs_on_failure():
            # The loop's phase puts the first pull somewhere in the next 15 s.
            h.wait_until(lambda: h.metric_sum(h.metrics_text(pprofd), "pprofd_scrapes_in_flight") >= 1,
                         20, interval=0.2, what="a CPU pull in flight")
            time.sleep(1)
            code, took = h.stop(pprofd, 10)
        self.assertEqual(code, 0)
        self.assertLess(took, 3.0)
        self.assertIn("shutdown complete", self.procs.log_of(pprofd))


class ReloadTest(Base):
    def test_reload_keeps_unchanged_loops_applies_changes_and_never_swallows_sigterm(self):
        a = h.start_demo_app(self.procs, "app-a")
        b = h.start_demo_app(self.procs, "app-b")
        out = self.tmp / "profiles"
        base = f"""
scrape: {{interval: 2s, timeout: 2s}}
profiles:
  process_cpu: {{enabled: false}}
  mutex: {{enabled: false}}
  block: {{enabled: false}}
discovery:
  static:
    - targets: ["{a}"]
{{extra}}sinks:
  - {{{{name: local, type: file, dir: "{out}"}}}}
"""
        config = h.write_config(self.tmp, base.replace("{extra}", "").replace("{{", "{").replace("}}", "}"))
        pprofd = h.start_pprofd(self.procs, config)
        with self.logs_on_failure():
            metric = lambda name, **labels: h.metric_sum(h.metrics_text(pprofd), name, **labels)  # noqa: E731
            h.wait_until(lambda: metric("pprofd_delta_total", result="emitted") >= 1, 20, interval=0.2,
                         what="a memory delta")
            first_before = metric("pprofd_delta_total", result="first")
            emitted_before = metric("pprofd_delta_total", result="emitted")
            reloaded_before = metric("pprofd_config_last_reload_success_timestamp_seconds")
            # Unchanged config: every loop keeps running, delta baselines included.
            pprofd.send_signal(signal.SIGHUP)
            h.wait_until(lambda: metric("pprofd_config_last_reload_success_timestamp_seconds") > reloaded_before,
                         10, interval=0.1, what="the SIGHUP reload")
            h.wait_until(lambda: metric("pprofd_delta_total", result="emitted") >= emitted_before + 2, 20,
                         interval=0.2, what="deltas after the reload")
            self.assertEqual(metric("pprofd_delta_total", result="first"), first_before)
            self.assertEqual(metric("pprofd_config_last_reload_successful"), 1)
            # A new target through POST /-/reload.
            config.write_text(base.replace("{extra}", f'    - targets: ["{b}"]\n')
                              .replace("{{", "{").replace("}}", "}"))
            req = urllib.request.Request(pprofd.base_url + "/-/reload", method="POST")
            urllib.request.urlopen(req, timeout=5).read()
            h.wait_until(lambda: len(json.loads(h.http_get(pprofd.base_url + "/api/v1/targets")[1])
                                     ["data"]["activeTargets"]) == 2, 10, interval=0.2, what="second target")
            # A reload requested right before SIGTERM must not swallow the SIGTERM.
            urllib.request.urlopen(urllib.request.Request(pprofd.base_url + "/-/reload", method="POST"),
                                   timeout=5).read()
            code, took = h.stop(pprofd, 10)
        self.assertEqual(code, 0)
        self.assertLess(took, 5)


class ConfigCommandTest(Base):
    def run_pprofd(self, *args, env=None):
        return subprocess.run([h.PPROFD_BIN, *args], capture_output=True, text=True, timeout=30, env=env)

    def test_check_config_reports_each_problem_on_its_own_line(self):
        bad = h.SOURCE_DIR / "tests" / "testdata" / "config" / "bad.yaml"
        result = self.run_pprofd("check-config", f"--config.file={bad}")
        self.assertEqual(result.returncode, 2)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 4, result.stderr)
        for line in lines:
            self.assertTrue(line.startswith("config error: "), line)
        joined = "\n".join(lines)
        for field in ("scrape.intervall", "scrape.timeout", "scrape.cpu_duration", "discovery.static[0].targets[0]"):
            self.assertIn(f"config error: {field}:", joined)

    def test_valid_config_and_version(self):
        good = h.SOURCE_DIR / "tests" / "testdata" / "config" / "good.yaml"
        result = self.run_pprofd("check-config", f"--config.file={good}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("config OK", result.stdout)
        version = self.run_pprofd("version")
        self.assertEqual(version.returncode, 0)
        self.assertIn("pprofd version", version.stdout)

    def test_run_with_bad_config_exits_2_and_usage_errors_exit_2(self):
        bad = h.SOURCE_DIR / "tests" / "testdata" / "config" / "bad.yaml"
        self.assertEqual(self.run_pprofd("run", f"--config.file={bad}").returncode, 2)
        self.assertEqual(self.run_pprofd("frobnicate").returncode, 2)
        self.assertEqual(self.run_pprofd("run", "--no.such.flag=1").returncode, 2)
        good = h.SOURCE_DIR / "tests" / "testdata" / "config" / "good.yaml"
        bad_listen = self.run_pprofd("run", f"--config.file={good}", "--web.listen-address=127.0.0.1:notaport")
        self.assertEqual(bad_listen.returncode, 2)
        self.assertIn("--web.listen-address", bad_listen.stderr)
        missing = self.run_pprofd("run", "--config.file=/nonexistent/pprofd.yaml")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("config error: config.file:", missing.stderr)

    def test_unset_env_var_names_its_field(self):
        config = h.write_config(self.tmp, "sinks:\n  - {name: local, type: file, dir: \"${PPROFD_IT_UNSET_DIR}\"}\n")
        env = {k: v for k, v in os.environ.items() if k != "PPROFD_IT_UNSET_DIR"}
        result = self.run_pprofd("check-config", f"--config.file={config}", env=env)
        self.assertEqual(result.returncode, 2)
        self.assertIn("config error: sinks[0].dir:", result.stderr)


class PrometheusTest(Base):
    @unittest.skipUnless(shutil.which("prometheus") and shutil.which("promtool"),
                         "Debian's prometheus package is not installed")
    def test_real_prometheus_scrapes_metrics(self):
        app = h.start_demo_app(self.procs, "app")
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 2s, timeout: 2s}}
discovery:
  static:
    - targets: ["{app}"]
sinks:
  - {{name: local, type: file, dir: "{self.tmp / 'profiles'}"}}
""")
        pprofd = h.start_pprofd(self.procs, config)
        target = pprofd.base_url.removeprefix("http://")
        prom_port = h.free_port()
        prom_config = self.tmp / "prometheus.yml"
        prom_config.write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: pprofd
    static_configs: [{{targets: ["{target}"]}}]
""")
        self.procs.start("prometheus", ["prometheus", f"--config.file={prom_config}",
                                        f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                                        f"--web.listen-address=127.0.0.1:{prom_port}"])
        import json
        import urllib.parse

        def query(expr):
            status, body = h.http_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query=" + urllib.parse.quote(expr))
            if status != 200:
                return None
            return json.loads(body)["data"]["result"]
        with self.logs_on_failure():
            h.wait_until(lambda: query('up{job="pprofd"} == 1'), 30, interval=0.5, what="prometheus up=1")
            h.wait_until(lambda: query('pprofd_scrapes_total{result="success"} > 0'), 30, interval=0.5,
                         what="successful scrapes visible in prometheus")
            self.assertTrue(query("process_resident_memory_bytes{job=\"pprofd\"} > 0"))
            self.assertTrue(query("pprofd_build_info == 1"))
        lint = subprocess.run(["promtool", "check", "metrics"], input=h.metrics_text(pprofd),
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
