#!/usr/bin/env python3
"""Measures pprofd's Kubernetes informer against the fake API server: API requests per minute in
steady state and after a 410 (compacted history), and the memory the informer holds per 1,000
pods. The pods are not annotated, so no scrape loops exist and RSS differences are the informer's.

  python3 bench/kube_informer.py --pprofd build-release/src/pprofd [--pods 10000] [--minutes 1]
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "support"))
import harness as h  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402


def requests(api):
    return sum(api.stats()["counts"].values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pprofd", default=str(ROOT / "build-release" / "src" / "pprofd"))
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--minutes", type=float, default=1.0)
    args = ap.parse_args()
    h.PPROFD_BIN = args.pprofd

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pprofd-kube-bench-"))
    procs = h.Processes(tmp)
    api = FakeApiServer(certs_dir=str(tmp / "certs"), token_file=str(tmp / "token"),
                        kubeconfig_out=str(tmp / "kubeconfig"), kubeconfig_token_file=True,
                        bookmark_interval=60.0, history_cap=max(20000, 2 * args.pods)).start()
    try:
        config = h.write_config(tmp, f"""
discovery:
  kubernetes: {{enabled: true, kubeconfig: "{tmp / 'kubeconfig'}"}}
sinks: []
""")
        pprofd = h.start_pprofd(procs, config)
        time.sleep(2)
        empty_rss = h.proc_status_kib(pprofd.pid, "VmRSS")
        for i in range(args.pods):
            api.create_pod({"name": f"p-{i}", "namespace": f"ns-{i % 50}", "phase": "Running",
                            "labels": {"app": f"app-{i % 200}", "pod-template-hash": f"{i:08x}"},
                            "containers": [{"name": "app", "ports": [{"containerPort": 8080, "name": "http"}]}]})
        h.wait_until(lambda: h.metric_sum(h.metrics_text(pprofd), "pprofd_kubernetes_pods") == args.pods,
                     300, interval=1, what="informer caught up")
        time.sleep(3)
        loaded_rss = h.proc_status_kib(pprofd.pid, "VmRSS")

        api.reset_stats()
        time.sleep(args.minutes * 60)
        steady = requests(api) / args.minutes

        # Expire pprofd's resourceVersion: the history moves on and is compacted while it is cut off.
        api.down()
        api.create_pod({"name": "late", "namespace": "ns-0", "phase": "Running"})
        api.compact()
        api.reset_stats()
        api.up()
        h.wait_until(lambda: h.metric_sum(h.metrics_text(pprofd), "pprofd_kubernetes_relists_total",
                                          reason="expired") >= 1, 60, what="relist")
        time.sleep(5)
        after_410 = api.stats()["counts"]
        metrics = h.metrics_text(pprofd)
        code, _ = h.stop(pprofd, 20)
        per_1000 = (loaded_rss - empty_rss) / args.pods
        print(json.dumps({
            "pods": args.pods,
            "rss_empty_mib": round(empty_rss / 1024, 1),
            "rss_loaded_mib": round(loaded_rss / 1024, 1),
            "informer_kib_per_1000_pods": round(per_1000 * 1000, 1),
            "steady_requests_per_minute": round(steady, 2),
            "requests_for_one_410": after_410,
            "lists_total": h.metric_sum(metrics, "pprofd_kubernetes_lists_total"),
            "exit_code": code,
        }, indent=2))
    finally:
        procs.close()
        api.stop()


if __name__ == "__main__":
    main()
