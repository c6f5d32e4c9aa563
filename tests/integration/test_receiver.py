#!/usr/bin/env python3
"""Self-test of receiver.py: real wire formats in, record lines and fault modes out."""

import gzip
import hashlib
import http.client
import json
import os
import pathlib
import select
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = pathlib.Path(os.environ.get("PPROFD_SOURCE_DIR", HERE.parents[1]))
GOROUTINE = SOURCE_DIR / "tests" / "testdata" / "pprof" / "goroutine.pb.gz"


# --- a hand-rolled protobuf encoder, independent of the receiver's decoder -------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_len(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def field_varint(field, n):
    return varint(field << 3) + varint(n)


def push_request(series):
    """series: [(labels dict, [(raw_profile bytes, id)])] -> serialized push.v1.PushRequest."""
    body = b""
    for labels, samples in series:
        s = b""
        for name, value in sorted(labels.items()):
            s += field_len(1, field_len(1, name) + field_len(2, value))
        for raw, sample_id in samples:
            s += field_len(2, field_len(1, raw) + field_len(2, sample_id))
        body += field_len(1, s)
    return body


def empty_pprof():
    """A valid goroutine profile with a sample type but no samples."""
    strings = ["", "goroutine", "count"]
    p = field_len(1, field_varint(1, 1) + field_varint(2, 2))
    for s in strings:
        p += field_len(6, s)
    p += field_varint(9, 1_700_000_000_000_000_000)
    return gzip.compress(p)


def multipart(parts):
    boundary = "test-boundary-5f1c"
    body = b""
    for name, filename, ctype, content in parts:
        body += b"--" + boundary.encode() + b"\r\n"
        disp = 'form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        body += ("Content-Disposition: %s\r\nContent-Type: %s\r\n\r\n" % (disp, ctype)).encode()
        body += content + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, body


class Receiver:
    def __init__(self, record, port=0, append=False):
        argv = [sys.executable, str(HERE / "receiver.py"), "--port", str(port), "--record",
                str(record)]
        if append:
            argv.append("--append")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        if not ready:
            self.stop()
            raise AssertionError("receiver did not start")
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "listening":
            self.stop()
            raise AssertionError("unexpected first line %r: %s" % (line, self.proc.stderr.read()))
        self.port = int(line[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class ReceiverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pprofd-receiver-")
        cls.record = pathlib.Path(cls.tmp.name) / "record.jsonl"
        cls.receiver = Receiver(cls.record)
        cls.gz = GOROUTINE.read_bytes()
        cls.raw = gzip.decompress(cls.gz)

    @classmethod
    def tearDownClass(cls):
        cls.receiver.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.control({"mode": "ok"})
        self.mark = len(self.records())

    def conn(self, port=None):
        return http.client.HTTPConnection("127.0.0.1", port or self.receiver.port, timeout=15)

    def request(self, method, path, body=b"", headers=None, conn=None):
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            if conn is None:
                c.close()

    def control(self, mode):
        status, _, body = self.request("POST", "/control", json.dumps(mode).encode(),
                                       {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)

    def stats(self):
        status, _, body = self.request("GET", "/stats")
        self.assertEqual(status, 200)
        return json.loads(body)

    def records(self):
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def new_records(self):
        return self.records()[self.mark:]

    def push(self, series, conn=None, content_type="application/proto"):
        return self.request("POST", "/prefix/push.v1.PusherService/Push", push_request(series),
                            {"Content-Type": content_type, "Connect-Protocol-Version": "1"},
                            conn=conn)

    def profefe(self, body, labels="namespace=shop,pod=cart-1"):
        query = urllib.parse.urlencode({"service": "shop/cart", "type": "goroutine",
                                        "labels": labels})
        return self.request("POST", "/api/0/profiles?" + query, body,
                            {"Content-Type": "application/octet-stream"})

    # --- data endpoints ---

    def test_push_records_every_series(self):
        labels = {"__name__": "goroutine", "service_name": "shop/cart", "pod": "cart-1"}
        status, headers, body = self.push([
            (labels, [(self.gz, "0b0c8e5e-3d4e-4b7e-9f36-2a1b7c1c9d01")]),
            (dict(labels, pod="cart-2"), [(self.raw, "")]),  # plain pprof is fine too
        ])
        self.assertEqual(status, 200, body)
        self.assertEqual(body, b"")
        self.assertEqual(headers["Content-Type"], "application/proto")
        recs = self.new_records()
        self.assertEqual(len(recs), 2)
        self.assertEqual(recs[0]["endpoint"], "push")
        self.assertEqual(recs[0]["labels"], labels)
        self.assertEqual(recs[1]["labels"]["pod"], "cart-2")
        self.assertEqual(recs[0]["id"], "0b0c8e5e-3d4e-4b7e-9f36-2a1b7c1c9d01")
        for r in recs:
            self.assertNotIn("error", r)
            self.assertEqual(r["sha256"], hashlib.sha256(self.raw).hexdigest())
            self.assertEqual(r["bytes"], len(self.raw))
            self.assertEqual(r["sample_types"], [["goroutine", "count"]])
            self.assertGreater(r["samples"], 0)
            self.assertGreater(r["time_nanos"], 0)
        self.assertTrue(recs[0]["gzipped"])
        self.assertFalse(recs[1]["gzipped"])

    def test_push_keeps_the_connection_alive(self):
        c = self.conn()
        try:
            for _ in range(3):
                status, _, _ = self.push([({"service_name": "a"}, [(self.gz, "")])], conn=c)
                self.assertEqual(status, 200)
            self.assertIsNotNone(c.sock)
        finally:
            c.close()

    def test_push_rejects_bad_profiles_and_content_types(self):
        status, _, body = self.push([({"service_name": "a"}, [(b"<html>oops</html>", "")])])
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["code"], "invalid_argument")
        recs = self.new_records()
        self.assertEqual(len(recs), 1)
        self.assertIn("error", recs[0])

        status, headers, _ = self.push([({"service_name": "a"}, [(self.gz, "")])],
                                       content_type="application/connect+proto")
        self.assertEqual(status, 415)
        self.assertIn("Accept-Post", headers)

    def test_ingest_multipart(self):
        config = {"goroutine": {"units": "goroutines", "display-name": "goroutines"}}
        ctype, body = multipart([
            ("profile", "profile.pprof", "application/octet-stream", self.gz),
            ("sample_type_config", "sample_type_config.json", "application/json",
             json.dumps(config).encode()),
        ])
        name = "shop/cart{namespace=shop,pod=cart-1,__session_id__=ab,__x=y}"
        query = urllib.parse.urlencode({"name": name, "from": "1700000000",
                                        "until": "1700000015", "spyName": "pprofd"})
        status, _, resp = self.request("POST", "/ingest?" + query, body, {"Content-Type": ctype})
        self.assertEqual(status, 200, resp)
        recs = self.new_records()
        self.assertEqual(len(recs), 1)
        r = recs[0]
        self.assertEqual(r["endpoint"], "ingest")
        self.assertEqual(r["labels"], {"service_name": "shop/cart", "namespace": "shop",
                                       "pod": "cart-1", "__session_id__": "ab"})
        self.assertEqual(r["sample_type_config"], config)
        self.assertEqual(r["sha256"], hashlib.sha256(self.raw).hexdigest())
        self.assertEqual(r["from"], "1700000000")
        self.assertEqual(r["spy_name"], "pprofd")

    def test_ingest_rejects_bad_names_and_bodies(self):
        ctype, body = multipart([("profile", "profile.pprof", "application/octet-stream",
                                  self.gz)])
        for name in ["", "bad name", "app{k=v", "app{bad-key=v}", "app{__name__=x}"]:
            status, _, _ = self.request("POST", "/ingest?name=" + urllib.parse.quote(name), body,
                                        {"Content-Type": ctype})
            self.assertEqual(status, 400, name)
        # Without filename= the part lands in form.Value and the server sees no profile.
        ctype, body = multipart([("profile", None, "application/octet-stream", self.gz)])
        status, _, _ = self.request("POST", "/ingest?name=app", body, {"Content-Type": ctype})
        self.assertEqual(status, 400)
        # format=pprof with a multipart body parses the whole body as pprof: fails.
        ctype, body = multipart([("profile", "profile.pprof", "application/octet-stream",
                                  self.gz)])
        status, _, _ = self.request("POST", "/ingest?name=app&format=pprof", body,
                                    {"Content-Type": ctype})
        self.assertEqual(status, 400)
        # ...but a raw body with format=pprof is fine.
        status, _, _ = self.request("POST", "/ingest?name=app&format=pprof", self.gz,
                                    {"Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200)

    def test_profefe(self):
        status, _, body = self.profefe(self.gz, labels="namespace=shop,pod=a%2Cb")
        self.assertEqual(status, 200, body)
        reply = json.loads(body)
        self.assertEqual(reply["code"], 200)
        self.assertEqual(reply["body"]["service"], "shop/cart")
        self.assertEqual(reply["body"]["type"], "goroutine")
        self.assertEqual(reply["body"]["labels"], [{"key": "namespace", "value": "shop"},
                                                   {"key": "pod", "value": "a,b"}])
        recs = self.new_records()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["endpoint"], "profefe")
        self.assertEqual(recs[0]["labels"], {"namespace": "shop", "pod": "a,b"})
        self.assertEqual(recs[0]["sha256"], hashlib.sha256(self.raw).hexdigest())

    def test_profefe_rejects_empty_profiles(self):
        status, _, body = self.profefe(empty_pprof())
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body),
                         {"code": 400, "error": "malformed profile (profile is empty: no samples)"})
        recs = self.new_records()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["error"], "malformed profile (profile is empty: no samples)")
        self.assertEqual(recs[0]["samples"], 0)

        status, _, _ = self.request("POST", "/api/0/profiles?type=cpu", self.gz)
        self.assertEqual(status, 400)
        status, _, _ = self.request("POST", "/api/0/profiles?service=a&type=allocs", self.gz)
        self.assertEqual(status, 400)

    # --- faults ---

    def test_status_fault_counts_down(self):
        before = self.stats()
        self.control({"mode": "status", "status": 503, "count": 1})
        status, _, body = self.push([({"service_name": "a"}, [(self.gz, "")])])
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["code"], "unavailable")
        status, _, _ = self.push([({"service_name": "a"}, [(self.gz, "")])])
        self.assertEqual(status, 200)
        after = self.stats()
        self.assertEqual(after["outcomes"].get("faulted", 0) - before["outcomes"].get("faulted", 0),
                         1)
        self.assertEqual(after["by_endpoint"]["push"]["accepted"] -
                         before["by_endpoint"].get("push", {}).get("accepted", 0), 1)
        self.assertEqual(after["requests"]["push"] - before["requests"].get("push", 0), 2)
        self.assertEqual(after["mode"], {"mode": "ok"})
        self.assertEqual(len(self.new_records()), 1)

    def test_status_fault_without_count_lasts(self):
        self.control({"mode": "status", "status": 500})
        for _ in range(3):
            status, _, _ = self.profefe(self.gz)
            self.assertEqual(status, 500)
        self.control({"mode": "ok"})
        self.assertEqual(self.profefe(self.gz)[0], 200)

    def test_retry_after(self):
        self.control({"mode": "status", "status": 429, "retry_after": 2, "count": 2})
        for _ in range(2):
            status, headers, body = self.push([({"service_name": "a"}, [(self.gz, "")])])
            self.assertEqual(status, 429)
            self.assertEqual(headers.get("Retry-After"), "2")
            self.assertEqual(json.loads(body)["code"], "resource_exhausted")
        self.assertEqual(self.push([({"service_name": "a"}, [(self.gz, "")])])[0], 200)

    def test_reset_closes_without_answer(self):
        self.control({"mode": "reset", "count": 1})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.push([({"service_name": "a"}, [(self.gz, "")])])
        self.assertEqual(self.push([({"service_name": "a"}, [(self.gz, "")])])[0], 200)
        self.assertEqual(len(self.new_records()), 1)

    def test_stall_then_answer(self):
        self.control({"mode": "stall", "seconds": 0.6, "count": 1})
        start = time.monotonic()
        status, _, _ = self.profefe(self.gz)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.55)
        recs = self.new_records()
        self.assertTrue(recs[-1]["stalled"])

    def test_reject_mode(self):
        self.control({"mode": "reject", "status": 400, "count": 1})
        status, _, body = self.profefe(self.gz)
        self.assertEqual(status, 400)
        self.assertIn("error", json.loads(body))
        self.assertEqual(self.new_records(), [])

    def test_bad_control(self):
        status, _, _ = self.request("POST", "/control", b'{"mode": "explode"}')
        self.assertEqual(status, 400)
        status, _, _ = self.request("POST", "/control", b'{"mode": "status"}')
        self.assertEqual(status, 400)


class RestartTest(unittest.TestCase):
    def test_restart_on_same_port_appends(self):
        gz = GOROUTINE.read_bytes()
        with tempfile.TemporaryDirectory(prefix="pprofd-receiver-") as tmp:
            record = pathlib.Path(tmp) / "record.jsonl"
            first = Receiver(record)
            port = first.port
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/push.v1.PusherService/Push",
                          push_request([({"service_name": "a"}, [(gz, "")])]),
                          {"Content-Type": "application/proto"})
                self.assertEqual(c.getresponse().status, 200)
                c.close()
            finally:
                first.stop()
            second = Receiver(record, port=port, append=True)
            try:
                self.assertEqual(second.port, port)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/push.v1.PusherService/Push",
                          push_request([({"service_name": "b"}, [(gz, "")])]),
                          {"Content-Type": "application/proto"})
                self.assertEqual(c.getresponse().status, 200)
                c.close()
            finally:
                second.stop()
            lines = [json.loads(x) for x in record.read_text().splitlines()]
            self.assertEqual([x["labels"]["service_name"] for x in lines], ["a", "b"])


if __name__ == "__main__":
    unittest.main()
