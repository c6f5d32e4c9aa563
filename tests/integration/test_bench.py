"""Keeps the cost benchmark (bench/run.sh) working: runs one small load point of
bench/loadtest.py — the Go target simulator, the Kubernetes API fake with one pod per target, the
counting Pyroscope receiver and pprofd — and checks the pipeline it measures, not its speed:
every scrape succeeds, every forwarded profile reaches the receiver, nothing is dropped, and every
figure the report needs (per-stage CPU, threads, lateness, delivery latency, delta state) is there."""

import json
import os
import subprocess
import sys
import unittest

import harness as h

STAGES = {"gunzip", "inspect", "decode", "delta", "encode", "gzip", "send_encode"}


def sim_binary():
    out = h.BUILD_DIR / "bench-sim"
    env = dict(os.environ, GOPROXY="off", GOTOOLCHAIN="local", GOFLAGS="")
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=h.SOURCE_DIR / "bench" / "sim", env=env,
                   check=True, timeout=300)
    return out


class BenchSmokeTest(unittest.TestCase):
    def test_a_small_load_point_measures_a_complete_pipeline(self):
        sim = sim_binary()
        profiles = h.BUILD_DIR / "bench-sim-profiles"
        if not (profiles / "manifest.json").exists():
            subprocess.run([str(sim), "record", "-out", str(profiles), "-size", "small"], check=True,
                           timeout=120, stdout=subprocess.DEVNULL)
        results = h.BUILD_DIR / "bench-smoke.jsonl"
        results.unlink(missing_ok=True)
        targets = 40
        subprocess.run([sys.executable, str(h.SOURCE_DIR / "bench" / "loadtest.py"), "--pprofd", h.PPROFD_BIN,
                        "--sim", str(sim), "--profiles", str(profiles), "--targets", str(targets),
                        "--interval", "5", "--intervals", "2", "--out", str(results)],
                       check=True, timeout=240)
        r = json.loads(results.read_text().splitlines()[-1])

        self.assertEqual(set(r["scrape_results"]), {"success"}, r["scrape_results"])
        # Five profile types per target per 5 s interval, over two intervals.
        self.assertGreaterEqual(r["scrape_results"]["success"], targets * 5 * 2 * 0.8)
        self.assertEqual(r["dropped"], 0)
        self.assertGreater(r["profiles_forwarded_per_s"], 0)
        self.assertAlmostEqual(r["receiver_profiles_per_s"], r["profiles_forwarded_per_s"],
                               delta=0.1 * r["profiles_forwarded_per_s"])
        stages = r["stage_cpu_s_per_1000_profiles"]
        self.assertEqual(set(stages), STAGES)
        for stage in ("gunzip", "inspect", "delta", "encode", "gzip"):
            self.assertGreater(stages[stage], 0, stage)
        self.assertIn("pprofd-io", r["thread_cpu_s_per_1000_profiles"])
        self.assertIn("pprofd-work", r["thread_cpu_s_per_1000_profiles"])
        self.assertGreater(r["delta_state_mib"], 0)
        for figure in ("lateness_p50_s", "lateness_p99_s", "delivery_latency_p99_s", "cpu_s_per_1000_profiles"):
            self.assertIsNotNone(r[figure], figure)


if __name__ == "__main__":
    unittest.main()
