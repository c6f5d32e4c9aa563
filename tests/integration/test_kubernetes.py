"""Integration tests for Kubernetes discovery: the real pprofd binary watching pods on the fake
API server (tests/support/fake_apiserver.py: HTTPS with its own CA, bearer tokens, chunked
watches, bookmarks, 410, pagination) and scraping real Go demo apps listening on 127.0.0.x
addresses given as pod IPs. Every pod IP in these tests is a loopback address."""

import json
import os
import pathlib
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
import harness as h  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402
from test_foundation import Base  # noqa: E402

SCRAPE = "pyroscope.io/scrape"
PORT = "pyroscope.io/port"


class KubeBase(Base):
    def setUp(self):
        super().setUp()
        self.api = FakeApiServer(certs_dir=str(self.tmp / "certs"), token_file=str(self.tmp / "token"),
                                 kubeconfig_out=str(self.tmp / "kubeconfig"), kubeconfig_token_file=True,
                                 bookmark_interval=1.0).start()

    def tearDown(self):
        self.api.stop()
        super().tearDown()

    def start_pprofd(self, profiles="goroutine", interval="2s", extra=""):
        enabled = set(profiles.split(","))
        lines = "".join(f"  {t}: {{enabled: {'true' if t in enabled else 'false'}}}\n"
                        for t in ("process_cpu", "memory", "goroutine", "mutex", "block"))
        self.out = self.tmp / "profiles"
        config = h.write_config(self.tmp, f"""
scrape: {{interval: {interval}, timeout: 2s}}
profiles:
{lines}discovery:
  kubernetes:
    enabled: true
    kubeconfig: "{self.tmp / 'kubeconfig'}"
{extra}sinks:
  - {{name: local, type: file, dir: "{self.out}"}}
""")
        return h.start_pprofd(self.procs, config)

    def targets(self, pprofd):
        status, body = h.http_get(pprofd.base_url + "/api/v1/targets")
        assert status == 200
        return json.loads(body)["data"]

    def active_pods(self, pprofd):
        return sorted(f'{t["labels"]["namespace"]}/{t["labels"]["pod"]}' for t in self.targets(pprofd)["activeTargets"])


class DiscoveryTest(KubeBase):
    def test_annotated_pods_become_targets_with_exact_labels(self):
        port = h.free_port()
        # The demo app listens on the address the pod claims as its IP.
        self.procs.start("cart", [h.demo_app_binary(), "-listen", f"127.0.0.2:{port}", "-name", "cart"])
        h.wait_until(lambda: h.http_get(f"http://127.0.0.2:{port}/debug/pprof/")[0] == 200, 20, what="cart app")
        self.api.create_pod({
            "name": "cart-1", "namespace": "shop", "nodeName": "node-1", "phase": "Running", "podIP": "127.0.0.2",
            "labels": {"app.kubernetes.io/name": "cart", "team": "blue", "pod-template-hash": "abc123"},
            "annotations": {SCRAPE: "true", PORT: str(port)},
            "containers": [{"name": "app", "ports": [{"containerPort": port, "name": "http"}]},
                           {"name": "sidecar", "ports": [{"containerPort": 9901}]}]})
        self.api.create_pod({"name": "bad-1", "namespace": "shop", "phase": "Running", "podIP": "127.0.0.3",
                             "annotations": {SCRAPE: "true", PORT: "abc"}})
        self.api.create_pod({"name": "plain", "namespace": "shop", "phase": "Running", "podIP": "127.0.0.4"})
        pprofd = self.start_pprofd()
        with self.logs_on_failure():
            h.wait_until(lambda: list(h.stored_profiles(self.out)), 30, interval=0.5, what="a profile from cart-1")
            data = self.targets(pprofd)
        # One target for the pod with two containers and one annotated port.
        self.assertEqual(len(data["activeTargets"]), 1)
        self.assertEqual(data["activeTargets"][0]["address"], f"127.0.0.2:{port}")
        dropped = data["droppedTargets"]
        self.assertEqual([(d["pod"], d["reason"]) for d in dropped], [("shop/bad-1", "invalid_port")])
        self.assertIn("abc", dropped[0]["detail"])
        _, sidecar = h.stored_profiles(self.out)[0]
        labels = sidecar["labels"]
        self.assertEqual(labels, {
            "__name__": "goroutine", "service_name": "cart", "namespace": "shop", "pod": "cart-1",
            "container": "app", "node": "node-1", "instance": f"127.0.0.2:{port}",
            "app_kubernetes_io_name": "cart", "team": "blue"})
        metrics = h.metrics_text(pprofd)
        self.assertEqual(h.metric_sum(metrics, "pprofd_discovery_dropped_targets", reason="invalid_port"), 1)
        self.assertEqual(h.metric_sum(metrics, "pprofd_kubernetes_synced"), 1)

        # Deleting the pod stops its loops within a second or two.
        self.api.delete_pod("shop", "cart-1")
        deleted = time.monotonic()
        h.wait_until(lambda: not self.targets(pprofd)["activeTargets"], 3, interval=0.05, what="target removed")
        self.assertLess(time.monotonic() - deleted, 1.0, "a deleted pod's loops stop within a second")

        # A rotated token is picked up without a restart: the next request gets 401, re-reads it.
        self.api.set_tokens(["rotated-" + os.urandom(4).hex()])
        self.api.drop_watches()
        self.api.create_pod({"name": "cart-2", "namespace": "shop", "phase": "Running", "podIP": "127.0.0.2",
                             "annotations": {SCRAPE: "true", PORT: str(port)}})
        h.wait_until(lambda: self.active_pods(pprofd) == ["shop/cart-2"], 40, interval=0.5,
                     what="discovery working again with the rotated token")
        code, _ = h.stop(pprofd, 15)
        self.assertEqual(code, 0)


class InClusterTest(KubeBase):
    def test_in_cluster_service_account_is_used_when_no_kubeconfig_is_set(self):
        sa = self.tmp / "serviceaccount"
        self.api.write_serviceaccount_dir(str(sa))
        port = h.free_port()
        self.procs.start("app", [h.demo_app_binary(), "-listen", f"127.0.0.6:{port}", "-name", "app"])
        h.wait_until(lambda: h.http_get(f"http://127.0.0.6:{port}/debug/pprof/")[0] == 200, 20, what="app")
        self.api.create_pod({"name": "api-0", "namespace": "prod", "nodeName": "node-7", "phase": "Running",
                             "podIP": "127.0.0.6", "labels": {"app": "api"},
                             "annotations": {"profiles.grafana.com/goroutine.scrape": "true",
                                             "profiles.grafana.com/goroutine.port": str(port)}})
        # Another node's pod: the DaemonSet-mode field selector keeps it out.
        self.api.create_pod({"name": "api-1", "namespace": "prod", "nodeName": "node-8", "phase": "Running",
                             "podIP": "127.0.0.6", "annotations": {"profiles.grafana.com/goroutine.scrape": "true",
                                                                  "profiles.grafana.com/goroutine.port": str(port)}})
        self.out = self.tmp / "profiles"
        config = h.write_config(self.tmp, f"""
scrape: {{interval: 2s}}
discovery:
  kubernetes: {{enabled: true, node_name: node-7}}
sinks:
  - {{name: local, type: file, dir: "{self.out}"}}
""")
        env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(self.api.port),
                   PPROFD_SERVICEACCOUNT_DIR=str(sa))
        env.pop("KUBECONFIG", None)
        pprofd = h.start_pprofd(self.procs, config, env=env)
        with self.logs_on_failure():
            h.wait_until(lambda: self.active_pods(pprofd) == ["prod/api-0"], 15, interval=0.2, what="node's pod")
            h.wait_until(lambda: list(h.stored_profiles(self.out)), 20, interval=0.5, what="a profile")
        _, sidecar = h.stored_profiles(self.out)[0]
        self.assertEqual(sidecar["labels"]["service_name"], "api")
        self.assertEqual(sidecar["labels"]["node"], "node-7")
        watches = self.api.stats()["watches"]
        self.assertTrue(any("spec.nodeName=node-7" in json.dumps(w) for w in watches), watches[:2])
        code, _ = h.stop(pprofd, 15)
        self.assertEqual(code, 0)


class ResilienceTest(KubeBase):
    def test_expired_history_relists_once_and_an_outage_keeps_targets(self):
        port = h.free_port()
        self.procs.start("app", [h.demo_app_binary(), "-listen", f"127.0.0.5:{port}", "-name", "app"])
        h.wait_until(lambda: h.http_get(f"http://127.0.0.5:{port}/debug/pprof/")[0] == 200, 20, what="app")
        self.api.configure(page_scan_limit=7)  # short pages: pagination is exercised for real
        for i in range(30):
            self.api.create_pod({"name": f"svc-{i}", "namespace": "team-a", "phase": "Running",
                                 "podIP": "127.0.0.5", "annotations": {SCRAPE: "true", PORT: str(port)}})
        pprofd = self.start_pprofd()
        expected = sorted(f"team-a/svc-{i}" for i in range(30))
        with self.logs_on_failure():
            h.wait_until(lambda: self.active_pods(pprofd) == expected, 20, interval=0.2, what="30 targets")
            before = h.metrics_text(pprofd)
            # A compacted history: while pprofd cannot see, the history moves on and is compacted,
            # so its watch resumes from a version the server no longer has.
            self.api.down()
            self.api.create_pod({"name": "svc-30", "namespace": "team-a", "phase": "Running",
                                 "podIP": "127.0.0.5", "annotations": {SCRAPE: "true", PORT: str(port)}})
            self.api.compact()
            self.api.up()
            expected.append("team-a/svc-30")
            expected.sort()
            h.wait_until(lambda: self.active_pods(pprofd) == expected, 10, interval=0.2, what="31 targets")
            h.wait_until(lambda: h.metric_sum(h.metrics_text(pprofd), "pprofd_kubernetes_relists_total",
                                              reason="expired") >= 1, 10, interval=0.2, what="a relist")
            after = h.metrics_text(pprofd)
            self.assertEqual(h.metric_sum(after, "pprofd_kubernetes_relists_total", reason="expired")
                             - h.metric_sum(before, "pprofd_kubernetes_relists_total", reason="expired"), 1)

            # A 60 s outage: existing targets keep being scraped.
            outage = float(os.environ.get("PPROFD_TEST_OUTAGE_SECONDS", "60"))
            scraped = h.metric_sum(after, "pprofd_scrapes_total", result="success")
            self.api.down()
            time.sleep(outage / 2)
            # Changes made while pprofd cannot see them.
            self.api.delete_pod("team-a", "svc-0")
            self.api.create_pod({"name": "late", "namespace": "team-a", "phase": "Running",
                                 "podIP": "127.0.0.5", "annotations": {SCRAPE: "true", PORT: str(port)}})
            time.sleep(outage / 2)
            during = h.metrics_text(pprofd)
            self.assertGreater(h.metric_sum(during, "pprofd_scrapes_total", result="success"), scraped + 30)
            self.assertEqual(len(self.active_pods(pprofd)), 31)
            self.api.up()
            expected = sorted([p for p in expected if p != "team-a/svc-0"] + ["team-a/late"])
            recovered = time.monotonic()
            h.wait_until(lambda: self.active_pods(pprofd) == expected, 40, interval=0.2, what="resync")
            resync = time.monotonic() - recovered
            print(f"resynced {resync:.1f}s after the API server came back", file=sys.stderr)
            self.assertLess(resync, 5.0)
        code, _ = h.stop(pprofd, 15)
        self.assertEqual(code, 0)


class ChurnTest(KubeBase):
    def test_target_set_follows_churn_without_duplicates(self):
        pods = int(os.environ.get("PPROFD_TEST_CHURN_PODS", "2000"))
        seconds = float(os.environ.get("PPROFD_TEST_CHURN_SECONDS", "60"))
        rate = 50
        # Nothing listens on these ports: scrapes fail fast, which is fine here.
        def annotated(i):
            return {"name": f"p-{i}", "namespace": "churn", "phase": "Running",
                    "podIP": f"127.1.{(i >> 8) & 255}.{(i & 255) or 1}", "annotations": {SCRAPE: "true", PORT: "9"}}
        for i in range(pods):
            self.api.create_pod(annotated(i))
        pprofd = self.start_pprofd(interval="15s")
        live = {f"p-{i}" for i in range(pods)}
        rnd = random.Random(7)
        next_id = pods
        with self.logs_on_failure():
            h.wait_until(lambda: len(self.targets(pprofd)["activeTargets"]) == pods, 60, interval=0.5,
                         what=f"{pods} targets")
            rss_loaded = h.rss_peak_kib(pprofd.pid)
            self.api.reset_stats()
            started = time.monotonic()
            changes = 0
            while time.monotonic() - started < seconds:
                for _ in range(rate // 10):
                    op = rnd.choice(["create", "delete", "update"])
                    if op == "create" or not live:
                        self.api.create_pod(annotated(next_id))
                        live.add(f"p-{next_id}")
                        next_id += 1
                    elif op == "delete":
                        name = rnd.choice(sorted(live))
                        self.api.delete_pod("churn", name)
                        live.discard(name)
                    else:
                        name = rnd.choice(sorted(live))
                        self.api.update_pod("churn", name, labels={"rev": str(changes)})
                    changes += 1
                time.sleep(0.1)
            churn_end = time.monotonic()
            expected = sorted(f"churn/{n}" for n in live)
            h.wait_until(lambda: self.active_pods(pprofd) == expected, 10, interval=0.1, what="converged")
            converged = time.monotonic() - churn_end
            metrics = h.metrics_text(pprofd)
            stats = self.api.stats()
        print(f"churn: {changes} changes in {seconds:.0f}s; converged {converged:.2f}s after the last; "
              f"API requests during churn: {stats['counts']}; peak RSS {rss_loaded / 1024:.1f} MiB "
              f"with {pods} pods", file=sys.stderr)
        self.assertLess(converged, 2.0)
        # No duplicate loops: one goroutine loop per live pod.
        active = self.targets(pprofd)["activeTargets"]
        self.assertEqual(len(active), len(live))
        self.assertEqual(sum(len(t["profiles"]) for t in active), len(live))
        self.assertEqual(h.metric_sum(metrics, "pprofd_targets", state="active"), len(live))
        code, _ = h.stop(pprofd, 20)
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
