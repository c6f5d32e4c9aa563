#!/usr/bin/env python3
"""A fault-injecting stand-in for Pyroscope (push and /ingest) and Profefe, for integration tests.

Usage: receiver.py --port N --record FILE [--append] [--verbose]

Binds 127.0.0.1 only and prints "listening <port>" once it accepts connections (--port 0 picks a
free port). Every profile it accepts becomes one JSON line in the record file; invalid ones are
answered 400 and recorded with an "error" key. Faults are switched at run time with
POST /control (see Faults below); GET /stats reports counts by endpoint and outcome.

Standard library only: the wire formats (protobuf, multipart, pprof) are parsed by hand here, so
the receiver checks pprofd's encoders instead of sharing their assumptions.
"""

import argparse
import datetime
import hashlib
import json
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 << 20
MAX_PROFILE = 256 << 20

# HTTP status -> Connect code, as a Connect server writes it (protocols.md §1.3).
CONNECT_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "aborted",
    413: "resource_exhausted",
    415: "invalid_argument",
    429: "resource_exhausted",
    499: "canceled",
    500: "internal",
    501: "unimplemented",
    503: "unavailable",
    504: "deadline_exceeded",
}

PROFEFE_TYPES = {"cpu", "heap", "block", "mutex", "goroutine", "threadcreate", "other", "trace"}

ENDPOINTS = ("push", "ingest", "profefe")


class BadRequest(Exception):
    """The request or a profile in it is malformed: answered 400."""


# --- protobuf wire format ------------------------------------------------------------------------


def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise BadRequest("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise BadRequest("varint too long")


def iter_fields(buf):
    """Yields (field, wire_type, value): int for varint/fixed, memoryview for length-delimited."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise BadRequest("field number 0 at offset %d" % pos)
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise BadRequest("truncated fixed64")
            value = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise BadRequest("length-delimited field %d overruns the message" % field)
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise BadRequest("truncated fixed32")
            value = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise BadRequest("unsupported wire type %d (field %d)" % (wire, field))
        yield field, wire, value


def expect_wire(field, wire, want, message):
    if wire != want:
        raise BadRequest("%s field %d has wire type %d, want %d" % (message, field, wire, want))


def decode_utf8(view, what):
    try:
        return bytes(view).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("%s is not valid UTF-8" % what) from None


def decode_label_pair(buf):
    name = value = ""
    for field, wire, v in iter_fields(buf):
        if field in (1, 2):
            expect_wire(field, wire, 2, "LabelPair")
            if field == 1:
                name = decode_utf8(v, "label name")
            else:
                value = decode_utf8(v, "label value")
    return name, value


def decode_push_request(body):
    """PushRequest -> [{"labels": [(name, value)], "samples": [(raw_profile bytes, ID)]}]."""
    series = []
    for field, wire, value in iter_fields(body):
        if field != 1:
            continue
        expect_wire(field, wire, 2, "PushRequest")
        s = {"labels": [], "samples": []}
        for f, w, v in iter_fields(value):
            if f == 1:
                expect_wire(f, w, 2, "RawProfileSeries")
                s["labels"].append(decode_label_pair(v))
            elif f == 2:
                expect_wire(f, w, 2, "RawProfileSeries")
                raw, sample_id = b"", ""
                for f2, w2, v2 in iter_fields(v):
                    if f2 == 1:
                        expect_wire(f2, w2, 2, "RawSample")
                        raw = bytes(v2)
                    elif f2 == 2:
                        expect_wire(f2, w2, 2, "RawSample")
                        sample_id = decode_utf8(v2, "RawSample.ID")
                s["samples"].append((raw, sample_id))
        series.append(s)
    return series


# --- pprof -----------------------------------------------------------------------------------------


def ungzip_profile(data):
    """Returns (raw bytes, was_gzipped)."""
    if len(data) >= 2 and data[0] == 0x1F and data[1] == 0x8B:
        try:
            # Like gzip.decompress (concatenated members) but bounded against bombs.
            out = bytearray()
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            rest = data
            while rest:
                out += d.decompress(rest, MAX_PROFILE + 1 - len(out))
                if len(out) > MAX_PROFILE:
                    raise BadRequest("decompressed profile exceeds %d bytes" % MAX_PROFILE)
                if d.unconsumed_tail:
                    rest = d.unconsumed_tail
                    continue
                if not d.eof:
                    raise BadRequest("truncated gzip stream")
                rest = d.unused_data
                if rest:
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return bytes(out), True
        except zlib.error as e:
            raise BadRequest("corrupt gzip stream: %s" % e) from None
    return bytes(data), False


def inspect_pprof(raw):
    """Walks a profile.proto message: sample types, sample count, string table, times."""
    if not raw:
        raise BadRequest("empty profile body")
    sample_type_idx = []
    value_counts = []
    strings = []
    info = {"time_nanos": 0, "duration_nanos": 0}
    for field, wire, value in iter_fields(raw):
        if field == 1:
            expect_wire(field, wire, 2, "Profile")
            t = u = 0
            for f, w, v in iter_fields(value):
                if f in (1, 2):
                    expect_wire(f, w, 0, "ValueType")
                    if f == 1:
                        t = v
                    else:
                        u = v
            sample_type_idx.append((t, u))
        elif field == 2:
            expect_wire(field, wire, 2, "Profile")
            n = 0
            for f, w, v in iter_fields(value):
                if f == 2:
                    if w == 0:
                        n += 1
                    elif w == 2:
                        pos = 0
                        while pos < len(v):
                            _, pos = read_varint(v, pos)
                            n += 1
                    else:
                        raise BadRequest("Sample.value has wire type %d" % w)
                elif f == 1 and w not in (0, 2):
                    raise BadRequest("Sample.location_id has wire type %d" % w)
            value_counts.append(n)
        elif field in (3, 4, 5):
            expect_wire(field, wire, 2, "Profile")
        elif field == 6:
            expect_wire(field, wire, 2, "Profile")
            strings.append(decode_utf8(value, "string_table[%d]" % len(strings)))
        elif field in (9, 10):
            expect_wire(field, wire, 0, "Profile")
            # int64 on the wire: two's complement in 64 bits.
            if value >= 1 << 63:
                value -= 1 << 64
            info["time_nanos" if field == 9 else "duration_nanos"] = value
    if not strings or strings[0] != "":
        raise BadRequest('string_table[0] must be ""')
    if not sample_type_idx:
        raise BadRequest("profile has no sample types")
    sample_types = []
    for t, u in sample_type_idx:
        if t >= len(strings) or u >= len(strings):
            raise BadRequest("sample type string index out of range")
        sample_types.append([strings[t], strings[u]])
    for i, n in enumerate(value_counts):
        if n != len(sample_types):
            raise BadRequest("sample %d has %d values, want %d" % (i, n, len(sample_types)))
    info["sample_types"] = sample_types
    info["samples"] = len(value_counts)
    return info


def profile_record(data):
    """Validates one (possibly gzipped) profile and returns the fields every record line has."""
    raw, gzipped = ungzip_profile(data)
    info = inspect_pprof(raw)
    return {
        "sample_types": info["sample_types"],
        "samples": info["samples"],
        "time_nanos": info["time_nanos"],
        "duration_nanos": info["duration_nanos"],
        "sha256": hashlib.sha256(raw).hexdigest(),
        "bytes": len(raw),
        "gzipped": gzipped,
    }


# --- /ingest -------------------------------------------------------------------------------------

APP_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")
KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


def parse_ingest_name(name):
    """`app{k=v,...}` -> labels, as Pyroscope's labelset parser and pprof converter do (§2.3)."""
    name = name.strip()
    brace = name.find("{")
    if brace < 0:
        app, tags = name, ""
    else:
        if not name.endswith("}"):
            raise BadRequest("name %r: missing closing brace" % name)
        app, tags = name[:brace].strip(), name[brace + 1:-1]
    if not app:
        raise BadRequest("service name is required")
    if not set(app) <= APP_CHARS:
        raise BadRequest("invalid app name %r" % app)
    labels = {}
    for tag in tags.split(","):
        if not tag.strip():
            continue
        if "=" not in tag:
            raise BadRequest("tag %r has no '='" % tag)
        key, value = (s.strip() for s in tag.split("=", 1))
        if not key or not set(key) <= KEY_CHARS:
            raise BadRequest("invalid tag key %r" % key)
        if key == "__name__":
            raise BadRequest("tag key __name__ is reserved")
        if key in labels:
            raise BadRequest("duplicate tag key %r" % key)
        labels[key] = value
    labels = {k: v for k, v in labels.items() if not k.startswith("__") or k == "__session_id__"}
    labels.setdefault("service_name", app)
    return labels


def header_params(value):
    """`type; a=b; c="d"` -> ("type", {"a": "b", "c": "d"})."""
    parts = value.split(";")
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params[k.strip().lower()] = v
    return parts[0].strip().lower(), params


def parse_multipart(content_type, body):
    """-> {name: (filename or None, content bytes, content type)}; strict about framing."""
    _, params = header_params(content_type)
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        raise BadRequest("multipart body without a usable boundary")
    delim = b"--" + boundary.encode("latin-1")
    if not body.startswith(delim + b"\r\n"):
        raise BadRequest("multipart body does not start with its boundary")
    end = body.find(b"\r\n" + delim + b"--")
    if end < 0:
        raise BadRequest("multipart body has no closing boundary")
    parts = {}
    for chunk in body[len(delim) + 2:end].split(b"\r\n" + delim + b"\r\n"):
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest("multipart part without a header block")
        headers = {}
        for line in head.split(b"\r\n"):
            k, colon, v = line.decode("latin-1").partition(":")
            if not colon:
                raise BadRequest("bad part header %r" % line)
            headers[k.strip().lower()] = v.strip()
        disposition, dparams = header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in dparams:
            raise BadRequest("part without Content-Disposition: form-data; name=...")
        parts[dparams["name"]] = (dparams.get("filename"), content,
                                  headers.get("content-type", ""))
    return parts


# --- server ----------------------------------------------------------------------------------------


class State:
    def __init__(self, record_path, append):
        self.lock = threading.Lock()
        self.record = open(record_path, "a" if append else "w", encoding="utf-8") \
            if record_path else None
        self.mode = {"mode": "ok"}
        self.remaining = None  # data requests the current fault still applies to; None = forever
        self.requests = {}
        self.outcomes = {}
        self.by_endpoint = {}
        self.profiles = {}

    def take_fault(self):
        """The fault to apply to this data request, if any; counts it down."""
        with self.lock:
            if self.mode["mode"] == "ok":
                return None
            mode = dict(self.mode)
            if self.remaining is not None:
                self.remaining -= 1
                if self.remaining <= 0:
                    self.mode, self.remaining = {"mode": "ok"}, None
            return mode

    def set_mode(self, mode):
        kind = mode.get("mode")
        if kind not in ("ok", "status", "reset", "stall", "reject"):
            raise BadRequest("unknown mode %r" % kind)
        if kind == "status" and not isinstance(mode.get("status"), int):
            raise BadRequest("mode status needs an integer status")
        count = mode.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise BadRequest("count must be a positive integer")
        with self.lock:
            self.mode = dict(mode)
            self.remaining = None if kind == "ok" else count

    def count(self, endpoint, outcome=None, profiles=0):
        with self.lock:
            if outcome is None:
                self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
                return
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            per = self.by_endpoint.setdefault(endpoint, {})
            per[outcome] = per.get(outcome, 0) + 1
            if profiles:
                self.profiles[endpoint] = self.profiles.get(endpoint, 0) + profiles

    def write(self, lines):
        if self.record is None:
            return
        with self.lock:
            for line in lines:
                self.record.write(json.dumps(line, sort_keys=True) + "\n")
            self.record.flush()

    def stats(self):
        with self.lock:
            return {
                "requests": dict(self.requests),
                "outcomes": dict(self.outcomes),
                "by_endpoint": {k: dict(v) for k, v in self.by_endpoint.items()},
                "profiles": dict(self.profiles),
                "mode": dict(self.mode),
                "remaining": self.remaining,
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pprofd-test-receiver/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("receiver: " + (fmt % args) + "\n")

    # -- plumbing --

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_BODY:
                    raise BadRequest("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BadRequest("body too large")
        return self.rfile.read(length) if length else b""

    def reply(self, status, body=b"", content_type=None, headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json"
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def error_body(self, endpoint, status, message):
        if endpoint == "profefe":
            return {"code": status, "error": message}
        return {"code": CONNECT_CODES.get(status, "unknown"), "message": message}

    def endpoint_of(self, path):
        if path.endswith("/push.v1.PusherService/Push"):
            return "push"
        if path.endswith("/ingest"):
            return "ingest"
        if path.endswith("/api/0/profiles"):
            return "profefe"
        return None

    # -- routes --

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/stats":
            self.reply(200, self.server.state.stats())
        elif path == "/healthz":
            self.reply(200, b"ok\n", "text/plain")
        else:
            self.reply(404, {"code": "not_found", "message": "no route " + path})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except (BadRequest, ValueError) as e:
            self.close_connection = True
            self.reply(413, {"code": "resource_exhausted", "message": str(e)})
            return
        if url.path == "/control":
            try:
                mode = json.loads(body or b"{}")
                if not isinstance(mode, dict):
                    raise BadRequest("control body must be a JSON object")
                self.server.state.set_mode(mode)
            except (BadRequest, ValueError) as e:
                self.reply(400, {"error": str(e)})
                return
            self.reply(200, {"ok": True, "mode": mode})
            return
        endpoint = self.endpoint_of(url.path)
        if endpoint is None:
            self.reply(404, {"code": "not_found", "message": "no route " + url.path})
            return
        state = self.server.state
        state.count(endpoint)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)

        stalled = False
        fault = state.take_fault()
        if fault is not None:
            kind = fault["mode"]
            if kind == "reset":
                state.count(endpoint, "faulted")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if kind in ("status", "reject"):
                state.count(endpoint, "faulted")
                status = int(fault.get("status", 400))
                headers = []
                if fault.get("retry_after") is not None:
                    headers.append(("Retry-After", str(fault["retry_after"])))
                self.reply(status, self.error_body(endpoint, status, "injected fault"),
                           headers=headers)
                return
            if kind == "stall":
                state.count(endpoint, "faulted")
                time.sleep(float(fault.get("seconds", 30)))
                stalled = True

        handler = {"push": self.handle_push, "ingest": self.handle_ingest,
                   "profefe": self.handle_profefe}[endpoint]
        try:
            handler(query, body, stalled)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def reject(self, endpoint, message, records=(), status=400):
        lines = []
        for r in records or [{}]:
            line = {"endpoint": endpoint, "error": message}
            line.update(r)
            lines.append(line)
        self.server.state.write(lines)
        self.server.state.count(endpoint, "invalid")
        self.reply(status, self.error_body(endpoint, status, message))

    def accept(self, endpoint, lines, stalled):
        # Who sent it: the tenant header and the credential's kind and user (never the secret).
        auth = self.headers.get("Authorization", "")
        sender = {"tenant": self.headers.get("X-Scope-OrgID", ""), "auth": auth.split(" ")[0]}
        if auth.startswith("Basic "):
            import base64
            sender["user"] = base64.b64decode(auth[6:]).decode(errors="replace").split(":")[0]
            sender["password_ok"] = base64.b64decode(auth[6:]).decode(errors="replace").split(":", 1)[-1] == \
                self.server.expected_password if self.server.expected_password else None
        for line in lines:
            line.update(sender)
            if stalled:
                line["stalled"] = True
        self.server.state.write(lines)
        self.server.state.count(endpoint, "accepted", profiles=len(lines))

    def handle_push(self, query, body, stalled):
        del query
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/proto":
            # What connect-go answers for a content type no protocol handler accepts.
            self.server.state.count("push", "invalid")
            self.reply(415, b"", headers=[("Accept-Post", "application/proto, application/json")])
            return
        version = self.headers.get("Connect-Protocol-Version")
        if version is not None and version != "1":
            self.reject("push", 'Connect-Protocol-Version must be "1", got %r' % version)
            return
        try:
            series = decode_push_request(body)
        except BadRequest as e:
            self.reject("push", "malformed PushRequest: %s" % e)
            return
        lines, errors = [], []
        for s in series:
            names = [n for n, _ in s["labels"]]
            labels = dict(s["labels"])
            problem = None
            if len(set(names)) != len(names):
                problem = "duplicate label names %s" % sorted(names)
            elif any(not n for n in names):
                problem = "empty label name"
            elif not s["samples"]:
                problem = "series without samples"
            for raw, sample_id in s["samples"] or [(None, "")]:
                line = {"endpoint": "push", "labels": labels, "id": sample_id}
                try:
                    if problem:
                        raise BadRequest(problem)
                    line.update(profile_record(raw))
                    lines.append(line)
                except BadRequest as e:
                    line["error"] = str(e)
                    errors.append(line)
        if errors:
            # Pyroscope wraps validation failures as invalid_argument for the whole Push.
            self.server.state.write(errors)
            self.server.state.count("push", "invalid")
            self.reply(400, self.error_body("push", 400, errors[0]["error"]))
            return
        self.accept("push", lines, stalled)
        self.reply(200, b"", "application/proto")

    def handle_ingest(self, query, body, stalled):
        def q(name, default=""):
            return query.get(name, [default])[0]

        try:
            labels = parse_ingest_name(q("name"))
        except BadRequest as e:
            self.reject("ingest", str(e))
            return
        line = {"endpoint": "ingest", "labels": labels, "spy_name": q("spyName", "unknown"),
                "from": q("from"), "until": q("until"), "format": q("format") or None}
        content_type = self.headers.get("Content-Type", "")
        try:
            # Same branch order as the server: format=pprof wins over a multipart body (§2.4).
            if q("format") == "pprof":
                profile = body
            elif content_type.lower().startswith("multipart/form-data"):
                parts = parse_multipart(content_type, body)
                # Go's ReadForm puts parts without a filename into form.Value: the server
                # never sees them.
                files = {k: v for k, v in parts.items() if v[0] is not None and v[1]}
                if "prev_profile" in files:
                    raise BadRequest("unsupported client version: prev_profile was sent")
                if "profile" not in files:
                    raise BadRequest("multipart body has no 'profile' file part")
                profile = files["profile"][1]
                line["parts"] = sorted(parts)
                if "sample_type_config" in files:
                    try:
                        config = json.loads(files["sample_type_config"][1])
                    except ValueError as e:
                        raise BadRequest("sample_type_config is not JSON: %s" % e) from None
                    if not isinstance(config, dict):
                        raise BadRequest("sample_type_config must be a JSON object")
                    line["sample_type_config"] = config
            else:
                raise BadRequest("not a pprof upload: no format=pprof and no multipart body")
            line.update(profile_record(profile))
        except BadRequest as e:
            self.reject("ingest", str(e), [line])
            return
        self.accept("ingest", [line], stalled)
        self.reply(200)

    def handle_profefe(self, query, body, stalled):
        service = query.get("service", [""])[0]
        ptype = query.get("type", [""])[0]
        if not service:
            self.reject("profefe", 'bad request: missing "service"')
            return
        if ptype not in PROFEFE_TYPES:
            self.reject("profefe", "unknown profile type")
            return
        labels = {}
        for pair in query.get("labels", [""])[0].split(","):
            key, _, value = pair.partition("=")
            key = urllib.parse.unquote_plus(key.strip())
            if key:
                labels[key] = urllib.parse.unquote_plus(value.strip())
        line = {"endpoint": "profefe", "service": service, "type": ptype, "labels": labels}
        try:
            line.update(profile_record(body))
        except BadRequest as e:
            self.reject("profefe", "malformed profile (%s)" % e, [line])
            return
        if line["samples"] == 0:
            self.reject("profefe", "malformed profile (profile is empty: no samples)", [line])
            return
        self.accept("profefe", [line], stalled)
        created = datetime.datetime.fromtimestamp(
            line["time_nanos"] / 1e9 if line["time_nanos"] > 0 else time.time(),
            tz=datetime.timezone.utc)
        self.reply(200, {"code": 200, "body": {
            "id": uuid.uuid4().hex,
            "type": ptype,
            "service": service,
            "labels": [{"key": k, "value": v} for k, v in sorted(labels.items())],
            "created_at": created.isoformat().replace("+00:00", "Z"),
        }})


class Server(ThreadingHTTPServer):
    allow_reuse_address = True  # restarted on the same port while old sockets sit in TIME_WAIT
    daemon_threads = True
    block_on_close = False      # a stalled handler must not hold up shutdown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", help="JSON-lines file of received profiles")
    parser.add_argument("--append", action="store_true",
                        help="append to --record instead of truncating it (for restarts)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the certificate's key (PEM)")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by this CA (mTLS)")
    parser.add_argument("--expect-password", help="record whether Basic auth carried this password")
    args = parser.parse_args(argv)

    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args.record, args.append)
    server.verbose = args.verbose
    server.expected_password = args.expect_password
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.tls_client_ca)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)

    def on_term(signum, frame):
        del signum, frame
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    print("listening %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
