"""Integration tests for the remote sinks: the real pprofd binary scraping the real Go demo app
and delivering to receivers that decode what arrives (tests/integration/receiver.py), with
faults injected on the receivers. The file sink is the reference: every profile pprofd stored
there must arrive at each remote sink exactly once, unless a drop was counted."""

import collections
import gzip
import hashlib
import json
import os
import pathlib
import signal
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from test_foundation import Base  # noqa: E402

RECEIVER = pathlib.Path(__file__).with_name("receiver.py")


class Receiver:
    def __init__(self, procs, tmp, name, port=None, extra_args=()):
        self.procs, self.name, self.extra_args = procs, name, list(extra_args)
        self.port = port or h.free_port()
        self.record = pathlib.Path(tmp) / f"{name}.jsonl"
        self.start()

    def start(self):
        self.proc = self.procs.start(self.name, [sys.executable, str(RECEIVER), "--port", str(self.port),
                                                 "--record", str(self.record), "--append", *self.extra_args])
        if "--tls-cert" in self.extra_args:
            h.wait_until(lambda: "listening" in self.procs.log_of(self.proc), 15, what=f"receiver {self.name}")
        else:
            h.wait_until(lambda: h.http_get(f"{self.url}/stats")[0] == 200, 15, what=f"receiver {self.name}")

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def control(self, **mode):
        req = urllib.request.Request(f"{self.url}/control", data=json.dumps(mode).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def accepted(self):
        if not self.record.exists():
            return []
        rows = [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]
        # A stalled request is answered (and recorded) after the client gave up and retried;
        # it never counted as delivered for pprofd, so it is not a duplicate delivery.
        return [r for r in rows if "error" not in r and not r.get("stalled")]

    def fault_consumed(self):
        status, body = h.http_get(f"{self.url}/stats")
        return status == 200 and json.loads(body)["mode"]["mode"] == "ok"


def stored_hashes(directory):
    """sha256 of the raw profile -> sidecar, for every profile in a file sink directory."""
    out = {}
    for path, sidecar in h.stored_profiles(directory):
        out[hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()] = sidecar
    return out


def config_text(app, profiles_dir, sinks, interval="2s"):
    return f"""
scrape: {{interval: {interval}, timeout: 3s}}
discovery:
  static:
    - targets: ["{app}"]
      labels: {{service_name: shop, team: blue}}
sinks:
  - {{name: reference, type: file, dir: "{profiles_dir}"}}
{sinks}
shutdown_timeout: 10s
"""


class AllSinksTest(Base):
    def test_every_profile_arrives_once_at_every_sink_with_its_labels(self):
        app = h.start_demo_app(self.procs, "app")
        push = Receiver(self.procs, self.tmp, "push")
        ingest = Receiver(self.procs, self.tmp, "ingest")
        profefe = Receiver(self.procs, self.tmp, "profefe")
        out = self.tmp / "profiles"
        sinks = (f"  - {{name: pyro, type: pyroscope, url: \"{push.url}\", tenant_id: team-a}}\n"
                 f"  - {{name: ingest, type: pyroscope_ingest, url: \"{ingest.url}\"}}\n"
                 f"  - {{name: profefe, type: profefe, url: \"{profefe.url}\"}}\n")
        pprofd = h.start_pprofd(self.procs, h.write_config(self.tmp, config_text(app, out, sinks)))
        with self.logs_on_failure():
            def every_type_everywhere():
                names = {r["labels"].get("__name__") for r in push.accepted()}
                return {"process_cpu", "memory", "goroutine", "mutex", "block"} <= names
            h.wait_until(every_type_everywhere, 40, interval=0.5, what="every type at the push receiver")
            metrics = h.metrics_text(pprofd)
            code, _ = h.stop(pprofd, 20)
        self.assertEqual(code, 0)
        reference = stored_hashes(out)
        self.assertEqual({s["labels"]["__name__"] for s in reference.values()},
                         {"process_cpu", "memory", "goroutine", "mutex", "block"})

        for receiver, endpoint in ((push, "push"), (ingest, "ingest")):
            rows = receiver.accepted()
            counts = collections.Counter(r["sha256"] for r in rows)
            self.assertEqual(set(counts), set(reference), endpoint)
            self.assertEqual(max(counts.values()), 1, f"{endpoint}: a profile arrived twice")
            for row in rows:
                self.assertEqual(row["endpoint"], endpoint)
                self.assertGreater(len(row["sample_types"]), 0)
        # Push carries every forwarded label, __name__ and __delta__ included.
        for row in push.accepted():
            expected = reference[row["sha256"]]["labels"]
            self.assertEqual(row["labels"], expected)
        # /ingest: service_name from the name, other labels from its braces.
        for row in ingest.accepted():
            expected = {k: v for k, v in reference[row["sha256"]]["labels"].items() if not k.startswith("__")}
            self.assertEqual(row["labels"], expected)
        # Profefe gets everything but empty profiles, which are skipped and counted.
        profefe_rows = profefe.accepted()
        skipped = h.metric_sum(metrics, "pprofd_sink_skipped_profiles_total", sink="profefe")
        profefe_hashes = collections.Counter(r["sha256"] for r in profefe_rows)
        self.assertEqual(max(profefe_hashes.values()), 1)
        self.assertTrue(set(profefe_hashes) <= set(reference))
        self.assertGreaterEqual(len(profefe_hashes) + skipped, len(reference) - 2)
        self.assertEqual(h.metric_sum(metrics, "pprofd_sink_dropped_profiles_total"), 0)


class OutageTest(Base):
    def test_receiver_down_for_a_minute_loses_nothing(self):
        app = h.start_demo_app(self.procs, "app")
        push = Receiver(self.procs, self.tmp, "push")
        out = self.tmp / "profiles"
        sinks = f"  - {{name: pyro, type: pyroscope, url: \"{push.url}\"}}\n"
        pprofd = h.start_pprofd(self.procs, h.write_config(self.tmp, config_text(app, out, sinks)))
        with self.logs_on_failure():
            h.wait_until(lambda: push.accepted(), 30, interval=0.5, what="first delivery")
            push.kill()
            time.sleep(60)
            during = len(stored_hashes(out))
            push.start()
            h.wait_until(lambda: len({r["sha256"] for r in push.accepted()}) >= during, 90, interval=1,
                         what="the backlog delivered after the outage")
            recovered = set(stored_hashes(out))
            h.wait_until(lambda: recovered <= {r["sha256"] for r in push.accepted()}, 30, interval=0.5,
                         what="every profile stored so far delivered")
            metrics = h.metrics_text(pprofd)
            code, _ = h.stop(pprofd, 20)
        self.assertEqual(code, 0)
        self.assertGreater(h.metric_sum(metrics, "pprofd_sink_retries_total", sink="pyro"), 0)
        self.assertEqual(h.metric_sum(metrics, "pprofd_sink_dropped_profiles_total", sink="pyro"), 0)
        received = collections.Counter(r["sha256"] for r in push.accepted())
        self.assertEqual(set(received), set(stored_hashes(out)))
        self.assertEqual(max(received.values()), 1)


class FaultsTest(Base):
    def test_transient_faults_lose_nothing_and_rejections_are_counted_exactly(self):
        app = h.start_demo_app(self.procs, "app")
        push = Receiver(self.procs, self.tmp, "push")
        ingest = Receiver(self.procs, self.tmp, "ingest")
        out = self.tmp / "profiles"
        sinks = (f"  - {{name: pyro, type: pyroscope, url: \"{push.url}\", timeout: 2s}}\n"
                 f"  - {{name: ingest, type: pyroscope_ingest, url: \"{ingest.url}\"}}\n")
        pprofd = h.start_pprofd(self.procs, h.write_config(self.tmp, config_text(app, out, sinks)))
        with self.logs_on_failure():
            h.wait_until(lambda: push.accepted() and ingest.accepted(), 30, interval=0.5, what="first deliveries")
            # The push receiver goes through every transient fault in turn.
            for fault in ({"mode": "status", "status": 500, "count": 2},
                          {"mode": "status", "status": 503, "count": 2},
                          {"mode": "status", "status": 429, "retry_after": 1, "count": 2},
                          {"mode": "reset", "count": 2},
                          {"mode": "stall", "seconds": 30, "count": 1}):
                push.control(**fault)
                h.wait_until(push.fault_consumed, 60, interval=0.5, what=f"fault {fault} consumed")
            # The ingest receiver rejects a few requests outright.
            ingest.control(mode="status", status=400, count=3)
            h.wait_until(ingest.fault_consumed, 30, interval=0.5, what="rejections consumed")
            time.sleep(3)
            metrics = h.metrics_text(pprofd)
            code, _ = h.stop(pprofd, 20)
        self.assertEqual(code, 0)
        reference = set(stored_hashes(out))
        received = collections.Counter(r["sha256"] for r in push.accepted())
        self.assertEqual(set(received), reference, "push lost or invented profiles")
        self.assertEqual(max(received.values()), 1)
        ingested = collections.Counter(r["sha256"] for r in ingest.accepted())
        self.assertEqual(max(ingested.values()), 1)
        missing = reference - set(ingested)
        self.assertEqual(len(missing), 3, "exactly the three rejected profiles are missing at /ingest")
        self.assertEqual(h.metric_sum(metrics, "pprofd_sink_dropped_profiles_total", sink="ingest",
                                      reason="rejected"), 3)
        self.assertEqual(h.metric_sum(metrics, "pprofd_sink_dropped_profiles_total", sink="pyro"), 0)


class TlsTest(Base):
    def test_mtls_with_basic_auth_and_tenant_delivers_and_a_wrong_ca_delivers_nothing(self):
        app = h.start_demo_app(self.procs, "app")
        certs = h.make_certs(self.tmp / "certs")
        password = self.tmp / "password"
        password.write_text("s3cret-pw\n")
        tls_args = ["--tls-cert", str(certs["server_cert"]), "--tls-key", str(certs["server_key"]),
                    "--tls-client-ca", str(certs["ca"]), "--expect-password", "s3cret-pw"]
        good = Receiver(self.procs, self.tmp, "good", extra_args=tls_args)
        bad = Receiver(self.procs, self.tmp, "bad", extra_args=tls_args)
        out = self.tmp / "profiles"
        tls = f'{{ca_file: "{certs["ca"]}", cert_file: "{certs["client_cert"]}", key_file: "{certs["client_key"]}"}}'
        wrong = f'{{ca_file: "{certs["other_ca"]}", cert_file: "{certs["client_cert"]}", key_file: "{certs["client_key"]}"}}'
        sinks = (f'  - {{name: good, type: pyroscope, url: "https://127.0.0.1:{good.port}", tenant_id: team-a, '
                 f'basic_auth: {{username: alice, password_file: "{password}"}}, tls: {tls}}}\n'
                 f'  - {{name: bad, type: pyroscope, url: "https://127.0.0.1:{bad.port}", tls: {wrong}}}\n')
        pprofd = h.start_pprofd(self.procs, h.write_config(self.tmp, config_text(app, out, sinks)))
        with self.logs_on_failure():
            h.wait_until(lambda: len(good.accepted()) >= 3, 30, interval=0.5, what="deliveries over mTLS")
            metrics = h.metrics_text(pprofd)
            code, _ = h.stop(pprofd, 20)
        self.assertEqual(code, 0)
        for row in good.accepted():
            self.assertEqual(row["tenant"], "team-a")
            self.assertEqual(row["auth"], "Basic")
            self.assertEqual(row["user"], "alice")
            self.assertTrue(row["password_ok"])
        # A server whose certificate the configured CA did not sign gets nothing, and says so.
        self.assertEqual(bad.accepted(), [])
        self.assertGreater(h.metric_sum(metrics, "pprofd_sink_retries_total", sink="bad"), 0)
        self.assertEqual(h.metric_sum(metrics, "pprofd_sink_sent_profiles_total", sink="bad"), 0)
        self.assertNotIn("s3cret-pw", self.procs.log_of(pprofd))


if __name__ == "__main__":
    unittest.main(verbosity=2)
