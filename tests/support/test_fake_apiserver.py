#!/usr/bin/env python3
"""Self-test: checks that fake_apiserver.py behaves like a real kube-apiserver for a pod
informer, with (a) stdlib http.client + ssl, (b) kubectl when installed, and (c) the official
Python client (`kubernetes`, Debian python3-kubernetes) when importable by some interpreter.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_apiserver as fa  # noqa: E402

SRV: fa.FakeApiServer = None
TMP: str = None


def setUpModule():
    global SRV, TMP
    TMP = tempfile.mkdtemp(prefix="fake-apiserver-test-")
    SRV = fa.FakeApiServer(port=0, control_port=0, certs_dir=os.path.join(TMP, "certs"),
                           token_file=os.path.join(TMP, "token"),
                           kubeconfig_out=os.path.join(TMP, "kubeconfig"),
                           serviceaccount_dir=os.path.join(TMP, "sa"),
                           serviceaccount_namespace="team-a", too_large_wait=0.3)
    SRV.start()


def tearDownModule():
    if SRV:
        SRV.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def ssl_ctx():
    ctx = ssl.create_default_context(cafile=SRV.ca_file)
    return ctx


def conn(timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", SRV.port, context=ssl_ctx(), timeout=timeout)


def api(path, token="__default__", headers=None, timeout=10):
    """GET path -> (status, headers, parsed json body)."""
    c = conn(timeout)
    h = dict(headers or {})
    if token == "__default__":
        token = SRV.token
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        data = r.read()
        try:
            body = json.loads(data)
        except ValueError:
            body = data
        return r.status, r.headers, body
    finally:
        c.close()


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


class _RawResponse:
    def __init__(self, status, headers):
        self.status, self.headers = status, headers


def watch(path, timeout=10, on_open=None):
    """Read a watch stream to its end with a hand-written HTTP/1.1 chunked parser, so the test
    sees the exact framing -> (status, headers, events, clean_end). clean_end is True only when
    the terminating zero-length chunk arrived."""
    raw = socket.create_connection(("127.0.0.1", SRV.port), timeout=timeout)
    sock = ssl_ctx().wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{SRV.port}\r\n"
                      f"Authorization: Bearer {SRV.token}\r\nAccept: application/json\r\n\r\n").encode())
        f = sock.makefile("rb")
        status_line = f.readline().decode()
        status = int(status_line.split()[1])
        headers = http.client.parse_headers(f)
        if on_open:
            on_open()
        if headers.get("Transfer-Encoding") != "chunked":
            n = int(headers.get("Content-Length", 0))
            return status, headers, [json.loads(f.read(n))], True
        events, clean, buf = [], False, b""
        try:
            while True:
                size_line = f.readline()
                if not size_line.endswith(b"\r\n"):
                    break  # connection closed mid-stream
                size = int(size_line.strip(), 16)
                if size == 0:
                    clean = f.readline() == b"\r\n"
                    break
                chunk = f.read(size)
                if len(chunk) != size or f.read(2) != b"\r\n":
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    events.append(json.loads(line))
        except (ConnectionError, ssl.SSLError, OSError, ValueError):
            clean = False
        return status, headers, events, clean
    finally:
        sock.close()


def control(path, body=None, method=None):
    data = json.dumps(body or {}).encode() if body is not None or method == "POST" else None
    req = urllib.request.Request(SRV.control_url + path, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def names(items):
    return [p["metadata"]["name"] for p in items]


class ListTests(unittest.TestCase):
    def test_unauthorized_status_body(self):
        expected = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
        for tok in (None, "wrong-token"):
            st, h, body = api("/api/v1/pods", token=tok)
            self.assertEqual(st, 401)
            self.assertEqual(body, expected)
            self.assertTrue(h["Content-Type"].startswith("application/json"))
        st, _, body = api("/healthz", token=None)
        self.assertEqual((st, body), (200, b"ok"))

    def test_pagination_consistent_snapshot(self):
        control("/pods/bulk", {"count": 25, "namespace": "page", "prefix": "p-"})
        path = "/api/v1/namespaces/page/pods"
        st, _, first = api(q(path, limit=10))
        self.assertEqual(st, 200)
        self.assertEqual(first["kind"], "PodList")
        self.assertEqual(first["apiVersion"], "v1")
        self.assertEqual(len(first["items"]), 10)
        self.assertEqual(first["metadata"]["remainingItemCount"], 15)
        snap_rv = first["metadata"]["resourceVersion"]
        want = sorted(f"p-{i}" for i in range(25))
        # mutate after the first page: the continuation must still show the snapshot
        control("/pods", {"name": "p-zzz", "namespace": "page"})
        control("/pods/delete", {"namespace": "page", "name": "p-9"})
        got = names(first["items"])
        tok = first["metadata"]["continue"]
        pages = 1
        while tok:
            st, _, page = api(q(path, limit=10, **{"continue": tok}))
            self.assertEqual(st, 200, page)
            self.assertEqual(page["metadata"]["resourceVersion"], snap_rv)
            got += names(page["items"])
            tok = page["metadata"].get("continue", "")
            pages += 1
        self.assertEqual(pages, 3)
        self.assertEqual(got, want)
        # a fresh list sees the change
        st, _, now = api(path)
        self.assertIn("p-zzz", names(now["items"]))
        self.assertNotIn("p-9", names(now["items"]))
        self.assertNotIn("continue", now["metadata"])
        # RV=0 is served from the "cache": the limit is ignored
        st, _, cached = api(q(path, limit=5, resourceVersion="0"))
        self.assertEqual(len(cached["items"]), 25)
        self.assertNotIn("continue", cached["metadata"])
        # continue + explicit RV is a 400
        st, _, body = api(q(path, limit=10, resourceVersion=snap_rv, **{"continue": first["metadata"]["continue"]}))
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))
        # an exact RV list (limit set) returns the old snapshot
        st, _, old = api(q(path, limit=100, resourceVersion=snap_rv))
        self.assertEqual(st, 200)
        self.assertEqual(sorted(names(old["items"])), want)
        self.assertEqual(old["metadata"]["resourceVersion"], snap_rv)
        st, _, old = api(q(path, resourceVersion=snap_rv, resourceVersionMatch="Exact"))
        self.assertEqual(sorted(names(old["items"])), want)

    def test_short_pages_until_continue_empty(self):
        control("/pods/bulk", {"count": 6, "namespace": "short", "prefix": "a-"})
        control("/pods/bulk", {"count": 2, "namespace": "short", "prefix": "b-", "template": {"labels": {"x": "y"}}})
        control("/config", {"page_scan_limit": 3})
        try:
            tok, got, pages, empty = "", [], 0, 0
            while True:
                params = {"limit": 2, "labelSelector": "x=y"}
                if tok:
                    params["continue"] = tok
                st, _, page = api(q("/api/v1/namespaces/short/pods", **params))
                self.assertEqual(st, 200)
                pages += 1
                empty += not page["items"]
                got += names(page["items"])
                tok = page["metadata"].get("continue")
                self.assertNotIn("remainingItemCount", page["metadata"])  # filtered list
                if not tok:
                    break
            self.assertEqual(got, ["b-0", "b-1"])
            self.assertGreaterEqual(empty, 1)
        finally:
            control("/config", {"page_scan_limit": None})

    def test_expired_continue_410(self):
        control("/pods/bulk", {"count": 6, "namespace": "exp", "prefix": "e-"})
        st, _, first = api(q("/api/v1/namespaces/exp/pods", limit=2))
        old_rv = first["metadata"]["resourceVersion"]
        control("/pods", {"name": "e-new", "namespace": "exp"})
        control("/compact", {})
        st, _, body = api(q("/api/v1/namespaces/exp/pods", limit=2, **{"continue": first["metadata"]["continue"]}))
        self.assertEqual(st, 410)
        self.assertEqual(body["kind"], "Status")
        self.assertEqual(body["reason"], "Expired")
        self.assertEqual(body["code"], 410)
        self.assertEqual(body["status"], "Failure")
        # the 410 carries a token for an inconsistent continuation
        tok = body["metadata"]["continue"]
        got = names(first["items"])
        while tok:
            st, _, page = api(q("/api/v1/namespaces/exp/pods", limit=2, **{"continue": tok}))
            self.assertEqual(st, 200)
            got += names(page["items"])
            tok = page["metadata"].get("continue")
        self.assertIn("e-new", got)
        # an exact-RV list older than the compaction point is a 410 too
        st, _, body = api(q("/api/v1/namespaces/exp/pods", limit=2, resourceVersion=old_rv))
        self.assertEqual((st, body["reason"]), (410, "Expired"))
        # a future RV: wait, then 504 ResourceVersionTooLarge
        st, h, body = api(q("/api/v1/pods", resourceVersion=str(int(old_rv) + 10**6)))
        self.assertEqual(st, 504)
        self.assertEqual(body["details"]["causes"][0]["reason"], "ResourceVersionTooLarge")
        # garbage continue token -> 400
        st, _, body = api(q("/api/v1/pods", limit=2, **{"continue": "!!!notbase64"}))
        self.assertEqual(st, 400)
        # option validation
        st, _, body = api(q("/api/v1/pods", resourceVersionMatch="NotOlderThan"))
        self.assertEqual((st, body["reason"]), (422, "Invalid"))
        st, _, body = api(q("/api/v1/pods", resourceVersion="0", resourceVersionMatch="Exact"))
        self.assertEqual(st, 422)

    def test_label_selectors(self):
        ns = "sel"
        for name, labels in [("a", {"app": "web", "tier": "fe"}), ("b", {"app": "api", "tier": "be"}),
                             ("c", {"app": "db"}), ("d", {})]:
            control("/pods", {"name": name, "namespace": ns, "labels": labels})
        cases = {
            "app=web": ["a"], "app==web": ["a"], "app!=web": ["b", "c", "d"],
            "app in (web,api)": ["a", "b"], "app notin (web, api)": ["c", "d"],
            "tier": ["a", "b"], "!tier": ["c", "d"], "app,!tier": ["c"],
            "app in (web,api),tier=be": ["b"], "app=web,app=api": [],
            "": ["a", "b", "c", "d"],
        }
        for sel, want in cases.items():
            st, _, body = api(q(f"/api/v1/namespaces/{ns}/pods", labelSelector=sel))
            self.assertEqual(st, 200, (sel, body))
            self.assertEqual(sorted(names(body["items"])), want, sel)
        for bad in ("app in web", "=x", "app=(x", "a b", "app=web,"):
            st, _, body = api(q(f"/api/v1/namespaces/{ns}/pods", labelSelector=bad))
            self.assertEqual((st, body.get("reason")), (400, "BadRequest"), bad)

    def test_field_selectors(self):
        control("/pods", {"name": "f1", "namespace": "fld", "nodeName": "node-x"})
        control("/pods", {"name": "f2", "namespace": "fld", "nodeName": "node-y", "phase": "Pending"})
        control("/pods", {"name": "f3", "namespace": "fld2", "nodeName": "node-x", "phase": "Succeeded"})
        cases = {
            "spec.nodeName=node-x": ["f1", "f3"], "spec.nodeName==node-y": ["f2"],
            "spec.nodeName!=node-x,metadata.namespace=fld": ["f2"],
            "status.phase=Running,spec.nodeName=node-x": ["f1"],
            "status.phase!=Running,spec.nodeName in": None,
            "metadata.name=f3": ["f3"], "metadata.namespace=fld2": ["f3"], "spec.host=node-y": ["f2"],
        }
        for sel, want in cases.items():
            st, _, body = api(q("/api/v1/pods", fieldSelector=sel))
            if want is None:
                self.assertEqual(st, 400, sel)
                continue
            self.assertEqual(st, 200, (sel, body))
            got = sorted(n for n in names(body["items"]) if n in ("f1", "f2", "f3"))
            self.assertEqual(got, want, sel)
            self.assertTrue(all(p["metadata"]["namespace"] in ("fld", "fld2") for p in body["items"])
                            or "namespace" not in sel and "name" not in sel, sel)
        st, _, body = api(q("/api/v1/pods", fieldSelector="spec.containers=x"))
        self.assertEqual(st, 400)
        self.assertIn("field label not supported", body["message"])

    def test_pod_shape_and_get(self):
        r = control("/pods", {"name": "shape", "namespace": "shp", "labels": {"app": "x"},
                              "annotations": {"profiles.grafana.com/cpu.scrape": "true"},
                              "containers": [{"name": "main", "ports": [6060, {"name": "m", "containerPort": 9090}]}],
                              "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                                   "uid": "1234", "controller": True}]})
        st, _, pod = api("/api/v1/namespaces/shp/pods/shape")
        self.assertEqual(st, 200)
        self.assertEqual(pod, r["pod"])
        self.assertEqual(pod["kind"], "Pod")
        md, spec, status = pod["metadata"], pod["spec"], pod["status"]
        for k in ("uid", "creationTimestamp", "resourceVersion"):
            self.assertTrue(md[k])
        self.assertEqual(spec["containers"][0]["ports"][1]["containerPort"], 9090)
        self.assertEqual(status["phase"], "Running")
        self.assertTrue(status["podIP"])
        self.assertEqual(status["podIPs"], [{"ip": status["podIP"]}])
        self.assertTrue(status["containerStatuses"][0]["ready"])
        self.assertTrue(status["containerStatuses"][0]["containerID"].startswith("containerd://"))
        self.assertIn({"type": "Ready", "status": "True"},
                      [{"type": c["type"], "status": c["status"]} for c in status["conditions"]])
        r2 = control("/pods/update", {"namespace": "shp", "name": "shape", "restart": True})
        cs = r2["pod"]["status"]["containerStatuses"][0]
        self.assertEqual(cs["restartCount"], 1)
        self.assertNotEqual(cs["containerID"], status["containerStatuses"][0]["containerID"])
        st, _, body = api("/api/v1/namespaces/shp/pods/nope")
        self.assertEqual((st, body["reason"]), (404, "NotFound"))
        st, _, body = api("/api/v1/nodes")
        self.assertEqual(st, 404)


class WatchTests(unittest.TestCase):
    def test_watch_replay_and_clean_end(self):
        st, _, lst = api("/api/v1/namespaces/wr/pods")
        rv0 = lst["metadata"]["resourceVersion"]
        control("/pods", {"name": "w", "namespace": "wr"})
        control("/pods/update", {"namespace": "wr", "name": "w", "labels": {"v": "2"}})
        control("/pods/delete", {"namespace": "wr", "name": "w"})
        control("/pods", {"name": "other-ns", "namespace": "wr-other"})
        t0 = time.monotonic()
        st, h, evs, clean = watch(q("/api/v1/namespaces/wr/pods", watch="1", resourceVersion=rv0, timeoutSeconds=1))
        elapsed = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertEqual(h["Transfer-Encoding"], "chunked")
        self.assertTrue(h["Content-Type"].startswith("application/json"))
        self.assertTrue(clean)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertEqual([e["type"] for e in evs], ["ADDED", "MODIFIED", "DELETED"])
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
        self.assertEqual(rvs, sorted(rvs))
        self.assertGreater(rvs[0], int(rv0))
        self.assertEqual(evs[1]["object"]["metadata"]["labels"], {"v": "2"})
        self.assertEqual(evs[2]["object"]["kind"], "Pod")

    def test_watch_rv_unset_sends_synthetic_added(self):
        control("/pods/bulk", {"count": 3, "namespace": "wi", "prefix": "i-"})
        for rv in ("", "0"):
            st, _, evs, clean = watch(q("/api/v1/namespaces/wi/pods", watch="true", resourceVersion=rv, timeoutSeconds=1))
            self.assertTrue(clean)
            self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in evs],
                             [("ADDED", "i-0"), ("ADDED", "i-1"), ("ADDED", "i-2")])
        st, _, evs, clean = watch(q("/api/v1/namespaces/wi/pods", watch="false"))  # a list
        self.assertEqual(st, 200)

    def test_live_events_and_bookmarks(self):
        control("/config", {"bookmark_interval": 0.2})
        try:
            st, _, lst = api("/api/v1/namespaces/bm/pods")
            rv0 = lst["metadata"]["resourceVersion"]

            def later():
                time.sleep(0.3)
                control("/pods", {"name": "live", "namespace": "bm"})
            t = threading.Thread(target=later)
            st, _, evs, clean = watch(q("/api/v1/namespaces/bm/pods", watch="1", resourceVersion=rv0,
                                        allowWatchBookmarks="true", timeoutSeconds=1), on_open=t.start)
            t.join()
            self.assertTrue(clean)
            types = [e["type"] for e in evs]
            self.assertIn("ADDED", types)
            bms = [e for e in evs if e["type"] == "BOOKMARK"]
            self.assertGreaterEqual(len(bms), 2)
            for b in bms:
                self.assertEqual(set(b["object"]), {"kind", "apiVersion", "metadata"})
                self.assertEqual(b["object"]["kind"], "Pod")
                self.assertEqual(list(b["object"]["metadata"]), ["resourceVersion"])
            # last bookmark is not behind the ADDED event
            added_rv = int(next(e for e in evs if e["type"] == "ADDED")["object"]["metadata"]["resourceVersion"])
            self.assertGreaterEqual(int(bms[-1]["object"]["metadata"]["resourceVersion"]), added_rv)
            # no bookmarks unless asked
            st, _, evs, clean = watch(q("/api/v1/namespaces/bm/pods", watch="1", resourceVersion=rv0, timeoutSeconds=1))
            self.assertNotIn("BOOKMARK", [e["type"] for e in evs])
        finally:
            control("/config", {"bookmark_interval": 1.0})

    def test_watch_410_error_event_after_compact(self):
        st, _, lst = api("/api/v1/namespaces/wc/pods")
        old = lst["metadata"]["resourceVersion"]
        control("/pods", {"name": "x", "namespace": "wc"})
        c = control("/compact", {})
        t0 = time.monotonic()
        st, h, evs, clean = watch(q("/api/v1/namespaces/wc/pods", watch="1", resourceVersion=old,
                                    allowWatchBookmarks="true", timeoutSeconds=30))
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(st, 200)
        self.assertTrue(clean)
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0]["type"], "ERROR")
        o = evs[0]["object"]
        self.assertEqual((o["kind"], o["apiVersion"], o["status"], o["reason"], o["code"]),
                         ("Status", "v1", "Failure", "Expired", 410))
        self.assertEqual(o["message"], f"too old resource version: {old} ({c['compactedResourceVersion']})")
        # watching from the compaction point itself is fine
        st, _, evs, clean = watch(q("/api/v1/namespaces/wc/pods", watch="1",
                                    resourceVersion=c["compactedResourceVersion"], timeoutSeconds=1))
        self.assertEqual(evs, [])
        self.assertTrue(clean)

    def test_history_cap_compacts(self):
        st, _, lst = api("/api/v1/namespaces/cap/pods")
        old = lst["metadata"]["resourceVersion"]
        control("/config", {"history_cap": 5})
        try:
            control("/pods/bulk", {"count": 8, "namespace": "cap"})
            st, _, evs, _ = watch(q("/api/v1/namespaces/cap/pods", watch="1", resourceVersion=old, timeoutSeconds=1))
            self.assertEqual([(e["type"], e["object"]["code"]) for e in evs], [("ERROR", 410)])
            self.assertLessEqual(control("/stats")["history"], 5)
        finally:
            control("/config", {"history_cap": 10000})

    def test_selector_transition_deleted(self):
        control("/pods", {"name": "s", "namespace": "wt", "labels": {"app": "yes"}})
        st, _, lst = api("/api/v1/namespaces/wt/pods")
        rv0 = lst["metadata"]["resourceVersion"]
        control("/pods/update", {"namespace": "wt", "name": "s", "labels": {"app": "no"}})
        control("/pods/update", {"namespace": "wt", "name": "s", "labels": {"app": "yes"}})
        control("/pods/update", {"namespace": "wt", "name": "s", "phase": "Failed"})
        st, _, evs, _ = watch(q("/api/v1/namespaces/wt/pods", watch="1", resourceVersion=rv0,
                                labelSelector="app=yes", timeoutSeconds=1))
        self.assertEqual([e["type"] for e in evs], ["DELETED", "ADDED", "MODIFIED"])
        # DELETED carries the previous object (still matching) with the event's RV
        self.assertEqual(evs[0]["object"]["metadata"]["labels"], {"app": "yes"})
        self.assertGreater(int(evs[0]["object"]["metadata"]["resourceVersion"]), int(rv0))
        st, _, evs, _ = watch(q("/api/v1/namespaces/wt/pods", watch="1", resourceVersion=rv0,
                                fieldSelector="status.phase=Running", timeoutSeconds=1))
        self.assertEqual([e["type"] for e in evs], ["MODIFIED", "MODIFIED", "DELETED"])

    def test_streaming_list(self):
        control("/pods/bulk", {"count": 2, "namespace": "sl"})
        path = q("/api/v1/namespaces/sl/pods", watch="1", sendInitialEvents="true", allowWatchBookmarks="true",
                 resourceVersionMatch="NotOlderThan", resourceVersion="", timeoutSeconds=1)
        st, _, evs, clean = watch(path)
        self.assertEqual([e["type"] for e in evs[:3]], ["ADDED", "ADDED", "BOOKMARK"])
        self.assertEqual(evs[2]["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"})
        st, _, body = api(q("/api/v1/namespaces/sl/pods", watch="1", sendInitialEvents="true"))
        self.assertEqual(st, 422)
        control("/config", {"watch_list": False})
        try:
            st, _, body = api(path)
            self.assertEqual((st, body["reason"]), (422, "Invalid"))
            self.assertIn("WatchList feature gate", body["message"])
        finally:
            control("/config", {"watch_list": True})

    def test_drop_watches(self):
        result = {}

        def run():
            result["r"] = watch(q("/api/v1/pods", watch="1", resourceVersion="0", timeoutSeconds=60), timeout=20)
        t = threading.Thread(target=run)
        t.start()
        deadline = time.time() + 5
        while control("/stats")["open_watches"] < 1 and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(control("/stats")["open_watches"], 1)
        t0 = time.monotonic()
        r = control("/drop_watches", {})
        self.assertGreaterEqual(r["dropped"], 1)
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 5)
        st, _, evs, clean = result["r"]
        self.assertEqual(st, 200)
        self.assertFalse(clean, "a dropped watch must not end with the terminating chunk")
        self.assertEqual(control("/stats")["open_watches"], 0)


class FaultTests(unittest.TestCase):
    def test_fail_modes(self):
        control("/fail", {"code": 503, "count": 2})
        for _ in range(2):
            st, _, body = api("/api/v1/pods")
            self.assertEqual((st, body["kind"], body["reason"], body["code"]), (503, "Status", "ServiceUnavailable", 503))
        self.assertEqual(api("/api/v1/pods")[0], 200)
        control("/fail", {"code": 500, "count": 1, "verbs": ["watch"]})
        self.assertEqual(api("/api/v1/pods")[0], 200)  # lists unaffected
        st, _, body = api(q("/api/v1/pods", watch="1", timeoutSeconds=1))
        self.assertEqual((st, body["reason"]), (500, "InternalError"))
        control("/fail", {"code": 429, "count": 1, "retry_after": 2})
        st, h, body = api("/api/v1/pods")
        self.assertEqual((st, body["reason"], h["Retry-After"]), (429, "TooManyRequests", "2"))
        control("/fail", {"code": 500, "count": 1, "verbs": ["watch"], "watch_event": True})
        st, _, evs, clean = watch(q("/api/v1/pods", watch="1", timeoutSeconds=5))
        self.assertEqual((st, [e["type"] for e in evs], evs[0]["object"]["code"]), (200, ["ERROR"], 500))

    def test_hang(self):
        control("/hang", {"count": 1})
        t0 = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            api("/api/v1/pods", timeout=0.5)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(api("/api/v1/pods")[0], 200)
        control("/hang", {})
        with self.assertRaises((socket.timeout, TimeoutError)):
            api("/api/v1/pods", timeout=0.3)
        control("/unhang", {})
        self.assertEqual(api("/api/v1/pods")[0], 200)

    def test_down_up(self):
        port = SRV.port
        control("/down", {})
        with self.assertRaises(ConnectionRefusedError):
            api("/api/v1/pods", timeout=2)
        self.assertFalse(control("/stats")["listening"])
        r = control("/up", {})
        self.assertEqual(r["port"], port)
        self.assertEqual(api("/api/v1/pods")[0], 200)

    def test_token_rotation(self):
        old = SRV.token
        self.assertEqual(api("/api/v1/pods", token=old)[0], 200)
        new = "rotated-" + str(time.time_ns())
        control("/token", {"token": new})
        st, _, body = api("/api/v1/pods", token=old)
        self.assertEqual((st, body["reason"]), (401, "Unauthorized"))
        self.assertEqual(api("/api/v1/pods", token=new)[0], 200)
        # files follow the rotation (kubelet-style atomic symlink swap for the SA dir)
        sa = os.path.join(TMP, "sa")
        with open(os.path.join(sa, "token")) as f:
            self.assertEqual(f.read(), new)
        self.assertTrue(os.path.islink(os.path.join(sa, "..data")))
        self.assertEqual(len([n for n in os.listdir(sa) if n.startswith("..") and n != "..data"]), 1)
        with open(os.path.join(sa, "namespace")) as f:
            self.assertEqual(f.read(), "team-a")
        with open(os.path.join(TMP, "token")) as f:
            self.assertEqual(f.read().strip(), new)
        with open(os.path.join(TMP, "kubeconfig")) as f:
            self.assertIn(new, f.read())
        # rotate on the server only: files keep the old token
        control("/token", {"tokens": [new, "second"], "write_files": False})
        self.assertEqual(api("/api/v1/pods", token="second")[0], 200)
        control("/token", {"reload": True})
        self.assertEqual(api("/api/v1/pods", token="second")[0], 401)
        self.assertEqual(api("/api/v1/pods", token=new)[0], 200)

    def test_stats(self):
        control("/stats/reset", {})
        api(q("/api/v1/pods", limit=500, resourceVersion="0"), headers={"User-Agent": "pprofd-test/1"})
        api(q("/api/v1/namespaces/x/pods", limit=500))
        watch(q("/api/v1/pods", watch="1", resourceVersion="1", allowWatchBookmarks="true", timeoutSeconds=0.2))
        s = control("/stats")
        self.assertEqual(s["counts"]["list"], 2)
        self.assertEqual(s["counts"]["watch"], 1)
        self.assertEqual(s["by_params"]["list /api/v1/pods?limit=500&resourceVersion=0"], 1)
        self.assertEqual(s["by_params"]["watch /api/v1/pods?allowWatchBookmarks=true&resourceVersion=<n>&timeoutSeconds=<t>&watch=1"], 1)
        self.assertEqual(s["lists"][0]["user_agent"], "pprofd-test/1")
        self.assertEqual(s["lists"][0]["status"], 200)
        self.assertEqual(s["last_request_headers"]["Authorization"], "Bearer <redacted>")
        self.assertNotIn(SRV.token, json.dumps(s))
        self.assertEqual(s["open_watches"], 0)

    def test_churn(self):
        st, _, lst = api("/api/v1/namespaces/churn/pods")
        rv0 = lst["metadata"]["resourceVersion"]
        r = control("/churn", {"count": 30, "namespace": "churn", "seed": 1})
        self.assertEqual(sum(r["ops"].values()), 30)
        st, _, evs, _ = watch(q("/api/v1/namespaces/churn/pods", watch="1", resourceVersion=rv0, timeoutSeconds=0.5))
        live = {}
        for e in evs:
            n = e["object"]["metadata"]["name"]
            if e["type"] == "DELETED":
                live.pop(n, None)
            else:
                live[n] = e["object"]["metadata"]["resourceVersion"]
        st, _, now = api("/api/v1/namespaces/churn/pods")
        self.assertEqual(live, {p["metadata"]["name"]: p["metadata"]["resourceVersion"] for p in now["items"]})


class CliTest(unittest.TestCase):
    def test_cli_ready_line_and_insecure(self):
        d = tempfile.mkdtemp(dir=TMP)
        for extra, scheme in (([], "https"), (["--insecure-http"], "http")):
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py"), "--port", "0",
                                  "--control-port", "0", "--certs", os.path.join(TMP, "certs"),
                                  "--token-file", os.path.join(d, "tok"), "--initial-pods", "3", *extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = p.stdout.readline().strip()
                self.assertRegex(line, rf"^ready {scheme}://127\.0\.0\.1:\d+ control http://127\.0\.0\.1:\d+$")
                url, curl = line.split()[1], line.split()[3]
                with open(os.path.join(d, "tok")) as f:
                    tok = f.read().strip()
                req = urllib.request.Request(url + "/api/v1/pods", headers={"Authorization": "Bearer " + tok})
                ctx = ssl_ctx() if scheme == "https" else None
                with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                    self.assertEqual(len(json.loads(r.read())["items"]), 3)
                urllib.request.urlopen(urllib.request.Request(curl + "/shutdown", data=b"{}"), timeout=5).read()
                self.assertEqual(p.wait(10), 0)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()


KUBECTL = os.environ.get("FAKE_APISERVER_KUBECTL") or shutil.which("kubectl")


@unittest.skipUnless(KUBECTL, "kubectl not installed (Debian package kubernetes-client, or kubectl)")
class KubectlTests(unittest.TestCase):
    def kubectl(self, *args, timeout=30):
        return subprocess.run([KUBECTL, "--kubeconfig", os.path.join(TMP, "kubeconfig"),
                               "--cache-dir", os.path.join(TMP, "kubectl-cache"), *args],
                              capture_output=True, text=True, timeout=timeout)

    def test_get_pods_json(self):
        control("/pods/bulk", {"count": 3, "namespace": "kubectl", "prefix": "k-"})
        r = self.kubectl("get", "pods", "-A", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        st, _, lst = api("/api/v1/pods")
        self.assertEqual(sorted(names(out["items"])), sorted(names(lst["items"])))
        r = self.kubectl("get", "pods", "-n", "kubectl")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE")
        self.assertRegex(r.stdout, r"k-0\s+1/1\s+Running\s+0")
        r = self.kubectl("get", "pods", "-A", "-l", "app in (nothing)", "--field-selector", "spec.nodeName=node-a")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_watch(self):
        control("/config", {"default_watch_timeout": 2})
        try:
            p = subprocess.Popen([KUBECTL, "--kubeconfig", os.path.join(TMP, "kubeconfig"),
                                  "--cache-dir", os.path.join(TMP, "kubectl-cache"),
                                  "get", "pods", "-n", "kubectl-w", "--watch", "-o", "json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 10
            while time.time() < deadline and control("/stats")["open_watches"] < 1:
                time.sleep(0.05)
            control("/pods", {"name": "kw", "namespace": "kubectl-w"})
            out, err = p.communicate(timeout=15)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn('"name": "kw"', out)
        finally:
            control("/config", {"default_watch_timeout": 1800})
            if p.poll() is None:
                p.kill()

    def test_unauthorized(self):
        good = SRV.token
        control("/token", {"token": "kubectl-other", "write_files": False})
        try:
            r = self.kubectl("get", "pods")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Unauthorized", r.stderr)
        finally:
            control("/token", {"token": good})


PY_CLIENT_SCRIPT = r"""
import json, os, sys, threading, time, urllib.request
from kubernetes import client, config, watch
args = json.loads(sys.argv[1])
def ctl(path, body):
    req = urllib.request.Request(args["control"] + path, data=json.dumps(body).encode())
    return json.loads(urllib.request.urlopen(req, timeout=10).read())
res = {}
config.load_kube_config(config_file=args["kubeconfig"])
v1 = client.CoreV1Api()
# paginated list like client-go's pager
items, cont, rv = [], None, None
while True:
    kw = {"limit": 4}
    if cont: kw["_continue"] = cont
    l = v1.list_pod_for_all_namespaces(**kw)
    rv = rv or l.metadata.resource_version
    items += [p.metadata.name for p in l.items]
    cont = l.metadata._continue
    if not cont: break
res["listed"] = len(items)
res["list_rv"] = rv
ctl("/pods", {"name": "py-1", "namespace": "pyclient"})
def later():
    time.sleep(0.5)
    ctl("/pods/update", {"namespace": "pyclient", "name": "py-1", "labels": {"x": "1"}})
    ctl("/pods/delete", {"namespace": "pyclient", "name": "py-1"})
threading.Thread(target=later).start()
w = watch.Watch()
evs = []
for ev in w.stream(v1.list_pod_for_all_namespaces, resource_version=rv, allow_watch_bookmarks=True,
                   timeout_seconds=2):
    if ev["type"] == "BOOKMARK":
        evs.append(("BOOKMARK", ev["object"]["metadata"]["resourceVersion"]))
    else:
        evs.append((ev["type"], ev["object"].metadata.name))
res["events"] = evs
# 410 after compaction surfaces as ApiException(410)
ctl("/compact", {})
try:
    for ev in watch.Watch().stream(v1.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=2):
        pass
    res["expired"] = None
except client.exceptions.ApiException as e:
    res["expired"] = e.status
# in-cluster config with an overridden service-account dir
os.environ["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
os.environ["KUBERNETES_SERVICE_PORT"] = str(args["port"])
from kubernetes.config.incluster_config import InClusterConfigLoader
c = client.Configuration()
InClusterConfigLoader(token_filename=os.path.join(args["sa"], "token"),
                      cert_filename=os.path.join(args["sa"], "ca.crt")).load_and_set(c)
res["incluster"] = len(client.CoreV1Api(client.ApiClient(c)).list_namespaced_pod("default").items) >= 0
print(json.dumps(res))
"""


def _python_with_kubernetes():
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe):
            try:
                if subprocess.run([exe, "-c", "import kubernetes"], capture_output=True, timeout=30).returncode == 0:
                    return exe
            except (OSError, subprocess.TimeoutExpired):
                pass
    return None


PY_K8S = _python_with_kubernetes()


@unittest.skipUnless(PY_K8S, "Python kubernetes client not importable (Debian package python3-kubernetes)")
class PythonClientTest(unittest.TestCase):
    def test_list_watch_410_incluster(self):
        control("/pods/bulk", {"count": 5, "namespace": "pyclient", "prefix": "pre-"})
        arg = json.dumps({"kubeconfig": os.path.join(TMP, "kubeconfig"), "control": SRV.control_url,
                          "port": SRV.port, "sa": os.path.join(TMP, "sa")})
        r = subprocess.run([PY_K8S, "-c", PY_CLIENT_SCRIPT, arg], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        st, _, lst = api("/api/v1/pods")
        self.assertGreaterEqual(res["listed"], 5)
        evs = [tuple(e) for e in res["events"] if e[0] != "BOOKMARK"]
        self.assertEqual(evs, [("ADDED", "py-1"), ("MODIFIED", "py-1"), ("DELETED", "py-1")])
        self.assertTrue(any(e[0] == "BOOKMARK" for e in res["events"]))
        self.assertEqual(res["expired"], 410)
        self.assertTrue(res["incluster"])


if __name__ == "__main__":
    unittest.main()
