#!/usr/bin/env python3
"""Protocol-faithful fake Kubernetes API server (pods only) for pprofd's tests.

Python 3.11 stdlib only; certificates are made with the `openssl` CLI.

It serves, over HTTPS with its own CA (or plain HTTP with --insecure-http):
  GET /api/v1/pods, /api/v1/namespaces/{ns}/pods, .../pods/{name}
      list (limit/continue, resourceVersion[+Match], labelSelector, fieldSelector)
      watch (?watch=1: replay from RV, 410 ERROR event, bookmarks, timeoutSeconds,
             sendInitialEvents streaming list, per-watcher selector filtering)
  GET /version /api /apis /api/v1 (legacy discovery, enough for kubectl)
  GET /healthz /livez /readyz (unauthenticated)
with bearer-token auth (401 Status on a wrong/missing token).

A separate plain-HTTP control API on 127.0.0.1 lets tests create/update/delete
pods, churn, compact history, inject failures (500/503/429, hangs, dropped
watches, listener down/up), rotate the token and read request statistics.
See CONTROL API below and the module-level `FakeApiServer` class for in-process
use.

CLI:
  python3 fake_apiserver.py --port P --control-port C --certs DIR --token-file F
      [--kubeconfig-out FILE] [--serviceaccount-dir DIR] [--insecure-http] ...
prints `ready https://127.0.0.1:P control http://127.0.0.1:C` once listening.

CONTROL API (JSON in, JSON out; every answer has "ok": true|false):
  GET  /stats                 request statistics (see FakeApiServer.stats)
  POST /stats/reset
  GET  /pods                  {"resourceVersion": "..", "items": [pod, ...]}
  POST /pods                  pod object ({"metadata":..,"spec":..,"status":..}) or
                              shorthand {"name","namespace","labels","annotations",
                              "nodeName","phase","podIP","ports":[6060],
                              "containers":[{"name","image","ports":[..]}],
                              "ready","hostNetwork","ownerReferences"}
                              -> {"ok":true,"pod":{..},"resourceVersion":".."}
  POST /pods/bulk             {"count":N,"namespace":"ns","prefix":"pod-","template":{shorthand},
                               "start":0,"sim_ips":false}  sim_ips: pod i gets the IP the
                              benchmark's target simulator (bench/sim) serves target i on
                              -> {"ok":true,"created":N,"resourceVersion":".."}
  POST /pods/update           {"namespace","name", shorthand fields to change,
                               "patch":{JSON merge patch}, "restart":true,
                               "terminating":true} -> {"ok":true,"pod":..,"resourceVersion":..}
  POST /pods/delete           {"namespace","name","graceful":false}
  POST /churn                 {"count":N,"namespace":null,"seed":0} random create/update/delete
  POST /compact               {"resourceVersion": optional} drop history up to RV (default: now)
  POST /fail                  {"code":500|503|429|..,"count":N,"verbs":["list","watch",..],
                               "retry_after":seconds,"watch_event":false} (count 0 clears).
                              Checked before auth; verbs: list, watch, get, discovery, health,
                              other (default: all). watch_event: a watch gets 200 + one ERROR
                              event carrying the Status instead of an HTTP error.
  POST /hang                  {"count":N|null} next N (null/0: all, until /unhang) API requests
                              are read and never answered (released connections just close)
  POST /unhang
  POST /drop_watches          abruptly close every open watch stream (no terminating chunk)
  POST /down                  {"drop_connections":true} close the listening socket
  POST /up                    reopen it on the same port
  POST /token                 {"token":"t"} | {"tokens":["a","b"]} | {"reload":true}
                              {"write_files":true} also rewrites token/serviceaccount/kubeconfig files
  POST /config                {"bookmark_interval":s,"default_watch_timeout":s,"history_cap":n,
                               "watch_list":bool,"page_scan_limit":n|null,"too_large_wait":s}
  POST /shutdown              stop the whole process (CLI mode)
Errors: {"ok":false,"error":"...","status":{Status}} with 400/404/409/422.

GET /stats answer: {"ok":true,"requests_total":N,
  "counts":{"list":n,"watch":n,"get":n,"discovery":n,"health":n,"other":n},
  "status_counts":{"200":n,"401":n,...},
  "by_params":{"list /api/v1/pods?limit=500&resourceVersion=0":n,
               "watch /api/v1/pods?allowWatchBookmarks=true&resourceVersion=<n>&timeoutSeconds=<t>&watch=1":n},
               (RV other than ""/"0" -> <n>, timeoutSeconds/timeout -> <t>, continue -> <token>)
  "lists":[{"time","method","path","verb","params":{..},"status","user_agent"}] (last 1000),
  "watches":[same] (last 1000), "open_watches":n,
  "open_watch_list":[{"path","params","since","events_sent"}], "open_connections":n,
  "last_request_headers":{..., "Authorization":"Bearer <redacted>"}, "last_request":{..},
  "resourceVersion":"..", "compactedResourceVersion":"..", "pods":n, "history":n,
  "listening":bool, "port":P}

Semantics worth knowing:
  * list RV unset: current; RV "0": current and `limit` ignored (watch cache); RV n without
    limit: not older than n (a future n waits too_large_wait then 504 ResourceVersionTooLarge);
    RV n with limit, or resourceVersionMatch=Exact: the exact snapshot at n (410 if compacted).
  * continue tokens are base64url({"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\x00"}) like
    the real server; one older than the compaction point -> 410 Expired whose Status carries
    metadata.continue for an inconsistent continuation (rv -1).
  * pages fill up to `limit` unless page_scan_limit is set (then short/empty pages with a
    continue token can occur, as with a real etcd-backed list).
  * watch RV unset/"0": synthetic ADDED then changes; RV n: changes after n; compacted n:
    200 + ERROR(410 Expired "too old resource version: n (compacted)") then a normal end.
    A pod leaving the selector -> DELETED (previous object, the event's RV); entering -> ADDED.
  * DELETED objects carry the deletion RV. graceful delete: MODIFIED(deletionTimestamp) + DELETED.
  * Accept: application/json;as=Table;g=meta.k8s.io;v=v1 gets a server-side-printed Table (kubectl).
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import datetime as _dt
import fcntl
import hashlib
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

# --------------------------------------------------------------------------------------
# helpers


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> float:
    try:
        return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()
    except Exception:
        return time.time()


def status_obj(code: int, reason: str, message: str, details: dict | None = None,
               list_meta: dict | None = None) -> dict:
    st = {"kind": "Status", "apiVersion": "v1", "metadata": dict(list_meta or {}),
          "status": "Failure", "message": message, "reason": reason}
    if details:
        st["details"] = details
    st["code"] = code
    return st


UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}

REASON_BY_CODE = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                  405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
                  429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                  504: "Timeout"}
MESSAGE_BY_CODE = {500: "Internal error occurred: injected failure",
                   503: "the server is currently unable to handle the request",
                   429: "storage is (re)initializing",
                   504: "the server was unable to return a response in the time allotted"}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details=None, list_meta=None,
                 headers=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details, list_meta)
        self.code = code
        self.headers = headers or {}


class Expired(Exception):
    def __init__(self, oldest: int):
        super().__init__("expired")
        self.oldest = oldest


def atomic_write(path: str, data: str | bytes, mode: int = 0o644) -> None:
    d = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------
# certificates (openssl CLI)


def ensure_certs(certs_dir: str) -> dict:
    """Create (or reuse) ca.crt/ca.key and server.crt/server.key in certs_dir."""
    certs_dir = os.path.abspath(certs_dir)
    os.makedirs(certs_dir, exist_ok=True)
    paths = {k: os.path.join(certs_dir, k) for k in ("ca.crt", "ca.key", "server.crt", "server.key")}
    with open(os.path.join(certs_dir, ".lock"), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if all(os.path.exists(p) and os.path.getsize(p) > 0 for p in paths.values()):
            return paths
        tmp = tempfile.mkdtemp(dir=certs_dir, prefix=".gen-")
        try:
            def run(*args):
                subprocess.run(["openssl", *args], cwd=tmp, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            with open(os.path.join(tmp, "ca.cnf"), "w") as f:
                f.write("[req]\ndistinguished_name=dn\nprompt=no\nx509_extensions=v3_ca\n"
                        "[dn]\nCN=fake-apiserver-ca\n"
                        "[v3_ca]\nbasicConstraints=critical,CA:TRUE\n"
                        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
                        "subjectKeyIdentifier=hash\n")
            with open(os.path.join(tmp, "server.ext"), "w") as f:
                f.write("basicConstraints=critical,CA:FALSE\n"
                        "keyUsage=critical,digitalSignature,keyEncipherment\n"
                        "extendedKeyUsage=serverAuth\n"
                        "authorityKeyIdentifier=keyid\n"
                        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,"
                        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
                        "DNS:kubernetes.default.svc.cluster.local\n")
            run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key.ec")
            run("pkcs8", "-topk8", "-nocrypt", "-in", "ca.key.ec", "-out", "ca.key")
            run("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "3650",
                "-config", "ca.cnf", "-out", "ca.crt")
            run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key.ec")
            run("pkcs8", "-topk8", "-nocrypt", "-in", "server.key.ec", "-out", "server.key")
            run("req", "-new", "-key", "server.key", "-subj", "/CN=kube-apiserver", "-out", "server.csr")
            run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-set_serial", "0x" + uuid.uuid4().hex[:16], "-sha256", "-days", "3650",
                "-extfile", "server.ext", "-out", "server.crt")
            for name in ("ca.key", "ca.crt", "server.key", "server.crt"):
                os.replace(os.path.join(tmp, name), paths[name])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return paths


# --------------------------------------------------------------------------------------
# selectors

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def _bad_selector(msg: str) -> ApiError:
    return ApiError(400, "BadRequest", msg)


def _check_label_key(key: str) -> None:
    name = key
    if "/" in key:
        prefix, name = key.split("/", 1)
        if not prefix or len(prefix) > 253 or not _DNS_SUB.match(prefix):
            raise _bad_selector(f'unable to parse requirement: key: Invalid value: "{key}": '
                                "prefix part must be a valid DNS subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise _bad_selector(f'unable to parse requirement: key: Invalid value: "{key}": name part '
                            "must consist of alphanumeric characters, '-', '_' or '.', and must "
                            "start and end with an alphanumeric character")


def _check_label_value(v: str) -> None:
    if len(v) > 63 or not _LABEL_VALUE.match(v):
        raise _bad_selector(f'unable to parse requirement: values[0]: Invalid value: "{v}": a valid '
                            "label must be an empty string or consist of alphanumeric characters, "
                            "'-', '_' or '.', and must start and end with an alphanumeric character")


_SEL_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")


def parse_label_selector(s: str):
    """Kubernetes label selector -> list of (op, key, values). Raises ApiError(400)."""
    s = s or ""
    toks = []
    pos = 0
    while pos < len(s):
        m = _SEL_TOKEN.match(s, pos)
        if not m:
            if s[pos:].strip() == "":
                break
            raise _bad_selector(f"unable to parse requirement: found '{s[pos:]}'")
        toks.append(m.group(1))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    reqs = []
    i = 0
    n = len(toks)

    def peek(k=0):
        return toks[i + k] if i + k < n else None

    if n == 0:
        return reqs
    while True:
        if peek() == "!":
            i += 1
            key = peek()
            if key is None or key in ("=", "==", "!=", "(", ")", ",", "!"):
                raise _bad_selector(f"unable to parse requirement: found '{key}', expected: identifier")
            _check_label_key(key)
            i += 1
            reqs.append(("!", key, ()))
        else:
            key = peek()
            if key is None or key in ("=", "==", "!=", "(", ")", ",", "!", "in", "notin", ">", "<"):
                raise _bad_selector(f"unable to parse requirement: found '{key}', expected: identifier")
            _check_label_key(key)
            i += 1
            op = peek()
            if op is None or op == ",":
                reqs.append(("exists", key, ()))
            elif op in ("=", "==", "!="):
                i += 1
                v = peek()
                if v is None or v == ",":
                    v = ""
                elif v in ("=", "==", "!=", "(", ")", "!", ">", "<"):
                    raise _bad_selector(f"unable to parse requirement: found '{v}', expected: identifier")
                else:
                    i += 1
                _check_label_value(v)
                reqs.append(("!=" if op == "!=" else "=", key, (v,)))
            elif op in ("in", "notin"):
                i += 1
                if peek() != "(":
                    raise _bad_selector(f"unable to parse requirement: found '{peek()}', expected: '('")
                i += 1
                vals = []
                while True:
                    t = peek()
                    if t is None:
                        raise _bad_selector("unable to parse requirement: found '', expected: ')'")
                    if t == ")":
                        if not vals or toks[i - 1] == ",":
                            vals.append("")
                        i += 1
                        break
                    if t == ",":
                        if toks[i - 1] in ("(", ","):
                            vals.append("")
                        i += 1
                        continue
                    if t in ("=", "==", "!=", "(", "!", ">", "<"):
                        raise _bad_selector(f"unable to parse requirement: found '{t}', expected: ',', ')' or identifier")
                    _check_label_value(t)
                    vals.append(t)
                    i += 1
                reqs.append((op, key, tuple(vals)))
            elif op in (">", "<"):
                i += 1
                v = peek()
                try:
                    int(v)
                except (TypeError, ValueError):
                    raise _bad_selector(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer")
                i += 1
                reqs.append((op, key, (v,)))
            else:
                raise _bad_selector(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt")
        t = peek()
        if t is None:
            break
        if t != ",":
            raise _bad_selector(f"found '{t}', expected: ',' or 'end of string'")
        i += 1
        if peek() is None:
            raise _bad_selector("found '', expected: identifier after ','")
    return reqs


def label_match(reqs, labels: dict) -> bool:
    labels = labels or {}
    for op, key, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "exists":
            ok = has
        elif op == "!":
            ok = not has
        elif op == "=":
            ok = has and v == vals[0]
        elif op == "!=":
            ok = (not has) or v != vals[0]
        elif op == "in":
            ok = has and v in vals
        elif op == "notin":
            ok = (not has) or v not in vals
        elif op in (">", "<"):
            try:
                iv = int(v)
            except (TypeError, ValueError):
                ok = False
            else:
                ok = iv > int(vals[0]) if op == ">" else iv < int(vals[0])
        else:
            ok = False
        if not ok:
            return False
    return True


POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
              "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
              "status.podIP", "status.podIPs", "status.nominatedNodeName")


def _split_unescaped(s: str, sep: str):
    out, cur, esc = [], [], False
    for ch in s:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if esc:
        cur.append("\\")
    out.append("".join(cur))
    return out


def _unescape_field(v: str) -> str:
    out, esc = [], False
    for ch in v:
        if esc:
            if ch not in "\\,=":
                raise _bad_selector(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch in ",=":
            raise _bad_selector(f"invalid field selector: unescaped {ch}")
        else:
            out.append(ch)
    return "".join(out)


def parse_field_selector(s: str):
    reqs = []
    if not s:
        return reqs
    for part in _split_unescaped(s, ","):
        if part == "":
            continue
        # find the first unescaped operator
        idx, op = None, None
        j = 0
        while j < len(part):
            if part[j] == "\\":
                j += 2
                continue
            if part.startswith("!=", j):
                idx, op = j, "!="
                break
            if part.startswith("==", j):
                idx, op = j, "=="
                break
            if part[j] == "=":
                idx, op = j, "="
                break
            j += 1
        if idx is None:
            raise _bad_selector(f"invalid selector: '{s}'; can't understand '{part}'")
        field = part[:idx].strip()
        value = _unescape_field(part[idx + len(op):])
        if field == "spec.host":
            field = "spec.nodeName"
        if field not in POD_FIELDS:
            raise _bad_selector(f'field label not supported: {field}')
        reqs.append((field, "!=" if op == "!=" else "=", value))
    return reqs


def pod_field_set(pod: dict) -> dict:
    md, spec, st = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    return {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.restartPolicy": spec.get("restartPolicy", ""),
        "spec.schedulerName": spec.get("schedulerName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
        "status.phase": st.get("phase", ""),
        "status.podIP": st.get("podIP", ""),
        "status.podIPs": ",".join(x.get("ip", "") for x in st.get("podIPs", []) or []),
        "status.nominatedNodeName": st.get("nominatedNodeName", ""),
    }


class Predicate:
    def __init__(self, label_sel: str = "", field_sel: str = "", namespace: str | None = None):
        self.labels = parse_label_selector(label_sel)
        self.fields = parse_field_selector(field_sel)
        self.namespace = namespace

    def empty(self) -> bool:
        return not self.labels and not self.fields

    def matches(self, pod: dict | None) -> bool:
        if pod is None:
            return False
        md = pod.get("metadata", {})
        if self.namespace is not None and md.get("namespace") != self.namespace:
            return False
        if self.labels and not label_match(self.labels, md.get("labels")):
            return False
        if self.fields:
            fs = pod_field_set(pod)
            for f, op, v in self.fields:
                if (fs.get(f, "") == v) != (op == "="):
                    return False
        return True


# --------------------------------------------------------------------------------------
# pod construction


def _container_id() -> str:
    return "containerd://" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def _norm_ports(ports):
    out = []
    for p in ports or []:
        if isinstance(p, int):
            out.append({"name": "http" if not out else f"http-{len(out)}", "containerPort": p,
                        "protocol": "TCP"})
        else:
            q = dict(p)
            q.setdefault("protocol", "TCP")
            out.append(q)
    return out


def _conditions(phase: str, ready: bool, ts: str) -> list:
    if phase == "Pending" and not ready:
        return [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": ts}]
    r = "True" if ready else "False"
    conds = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts},
        {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts},
        {"type": "Ready", "status": r, "lastProbeTime": None, "lastTransitionTime": ts},
        {"type": "ContainersReady", "status": r, "lastProbeTime": None, "lastTransitionTime": ts},
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": ts},
    ]
    if not ready:
        for c in conds[2:4]:
            c["reason"] = "ContainersNotReady" if phase != "Succeeded" else "PodCompleted"
    return conds


def _container_status(c: dict, phase: str, ready: bool, ts: str, restart_count=0, cid=None) -> dict:
    cs = {"name": c["name"], "image": c.get("image", ""),
          "imageID": c.get("image", "").split(":")[0] + "@sha256:" +
          hashlib.sha256(c.get("image", "").encode()).hexdigest(),
          "restartCount": restart_count, "started": phase == "Running", "ready": bool(ready),
          "lastState": {}}
    if phase == "Running":
        cs["containerID"] = cid or _container_id()
        cs["state"] = {"running": {"startedAt": ts}}
    elif phase in ("Succeeded", "Failed"):
        cs["containerID"] = cid or _container_id()
        cs["state"] = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                      "reason": "Completed" if phase == "Succeeded" else "Error",
                                      "startedAt": ts, "finishedAt": ts,
                                      "containerID": cs["containerID"]}}
    else:
        cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return cs


def refresh_status(pod: dict, *, ready=None, restart=False) -> None:
    """Make status.conditions/containerStatuses consistent with phase (and readiness)."""
    spec, st = pod.setdefault("spec", {}), pod.setdefault("status", {})
    phase = st.get("phase", "Running")
    ts = now_rfc3339()
    old = {c.get("name"): c for c in st.get("containerStatuses", []) or []}
    if ready is None:
        ready = phase == "Running" and all(c.get("ready", True) for c in old.values()) if old else phase == "Running"
    new = []
    for c in spec.get("containers", []):
        prev = old.get(c["name"])
        rc = (prev or {}).get("restartCount", 0) + (1 if restart else 0)
        cid = None if restart or not prev else prev.get("containerID")
        cs = _container_status(c, phase, ready and phase == "Running", ts, rc, cid)
        if restart and prev and prev.get("state", {}).get("running"):
            cs["lastState"] = {"terminated": {"exitCode": 2, "reason": "Error",
                                              "startedAt": prev["state"]["running"].get("startedAt", ts),
                                              "finishedAt": ts,
                                              "containerID": prev.get("containerID", "")}}
        new.append(cs)
    st["containerStatuses"] = new
    st["conditions"] = _conditions(phase, ready and phase == "Running", ts)


SHORTHAND_KEYS = {"name", "namespace", "labels", "annotations", "nodeName", "node", "phase",
                  "podIP", "ports", "containers", "ready", "hostNetwork", "ownerReferences",
                  "generateName", "image", "hostIP", "initContainers"}


def apply_shorthand(pod: dict, sh: dict, alloc_ip) -> None:
    md, spec, st = pod.setdefault("metadata", {}), pod.setdefault("spec", {}), pod.setdefault("status", {})
    if "labels" in sh:
        md["labels"] = dict(sh["labels"] or {})
    if "annotations" in sh:
        md["annotations"] = dict(sh["annotations"] or {})
    if "ownerReferences" in sh:
        md["ownerReferences"] = copy.deepcopy(sh["ownerReferences"])
    if "nodeName" in sh or "node" in sh:
        spec["nodeName"] = sh.get("nodeName", sh.get("node"))
        st["hostIP"] = sh.get("hostIP") or _host_ip(spec["nodeName"])
        st["hostIPs"] = [{"ip": st["hostIP"]}]
    if "hostIP" in sh:
        st["hostIP"] = sh["hostIP"]
        st["hostIPs"] = [{"ip": sh["hostIP"]}]
    if "hostNetwork" in sh:
        spec["hostNetwork"] = bool(sh["hostNetwork"])
    if "containers" in sh or "ports" in sh or "image" in sh:
        if "containers" in sh:
            cs = []
            for i, c in enumerate(sh["containers"]):
                c = dict(c)
                c.setdefault("name", f"c{i}")
                c.setdefault("image", sh.get("image", "registry.example/app:1.0"))
                c["ports"] = _norm_ports(c.get("ports", []))
                cs.append(c)
            spec["containers"] = [_container_defaults(c) for c in cs]
        else:
            for c in spec.get("containers", []):
                if "ports" in sh:
                    c["ports"] = _norm_ports(sh["ports"])
                if "image" in sh:
                    c["image"] = sh["image"]
    if "initContainers" in sh:
        spec["initContainers"] = [_container_defaults(dict(c, ports=_norm_ports(c.get("ports", []))))
                                  for c in sh["initContainers"]]
    if "phase" in sh:
        st["phase"] = sh["phase"]
        if sh["phase"] != "Pending" and not st.get("podIP"):
            ip = alloc_ip()
            st["podIP"], st["podIPs"] = ip, [{"ip": ip}]
            st.setdefault("startTime", now_rfc3339())
    if "podIP" in sh:
        if sh["podIP"]:
            st["podIP"], st["podIPs"] = sh["podIP"], [{"ip": sh["podIP"]}]
        else:
            st.pop("podIP", None)
            st.pop("podIPs", None)
    if spec.get("hostNetwork") and st.get("hostIP") and "podIP" not in sh:
        st["podIP"], st["podIPs"] = st["hostIP"], [{"ip": st["hostIP"]}]


def sim_target_ip(i: int) -> str:
    """The address bench/sim serves target i on (127.1.0.1 upwards, 250 per /24)."""
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def _host_ip(node: str) -> str:
    h = int(hashlib.sha256((node or "").encode()).hexdigest()[:4], 16)
    return f"127.200.{(h >> 8) & 255}.{max(1, h & 255)}"


def _container_defaults(c: dict) -> dict:
    c.setdefault("image", "registry.example/app:1.0")
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("imagePullPolicy", "IfNotPresent")
    if not c.get("ports"):
        c.pop("ports", None)
    return c


def build_pod(body: dict, alloc_ip) -> dict:
    """Full pod object from a partial pod object or shorthand dict, with realistic defaults."""
    if "metadata" in body or "spec" in body or "status" in body:
        pod = copy.deepcopy({k: v for k, v in body.items() if k in ("metadata", "spec", "status")})
        sh = {k: v for k, v in body.items() if k in SHORTHAND_KEYS}
    else:
        pod = {}
        sh = dict(body)
    md = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    st = pod.setdefault("status", {})
    if "name" in sh:
        md["name"] = sh["name"]
    if "namespace" in sh:
        md["namespace"] = sh["namespace"]
    if "generateName" in sh:
        md["generateName"] = sh["generateName"]
    if not md.get("name"):
        if md.get("generateName"):
            md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
        else:
            raise ApiError(422, "Invalid", "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required")
    md.setdefault("namespace", "default")
    md["uid"] = md.get("uid") or str(uuid.uuid4())
    md.setdefault("creationTimestamp", now_rfc3339())
    md.pop("resourceVersion", None)
    spec.setdefault("containers", [{"name": "app", "image": "registry.example/app:1.0",
                                    "ports": [{"name": "http", "containerPort": 6060, "protocol": "TCP"}]}])
    spec["containers"] = [_container_defaults(dict(c, ports=_norm_ports(c.get("ports"))))
                          for c in spec["containers"]]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}])
    if "nodeName" not in sh and "node" not in sh:
        spec.setdefault("nodeName", "node-a")
    st.setdefault("phase", sh.get("phase", "Running"))
    st.setdefault("qosClass", "BestEffort")
    apply_shorthand(pod, sh, alloc_ip)
    if spec.get("nodeName") and not st.get("hostIP"):
        st["hostIP"] = _host_ip(spec["nodeName"])
        st["hostIPs"] = [{"ip": st["hostIP"]}]
    if st["phase"] != "Pending":
        st.setdefault("startTime", md["creationTimestamp"])
        if not st.get("podIP") and "podIP" not in sh:
            ip = st["hostIP"] if spec.get("hostNetwork") else alloc_ip()
            st["podIP"], st["podIPs"] = ip, [{"ip": ip}]
    if "containerStatuses" not in st or "containers" in sh or "phase" in sh or "ready" in sh:
        refresh_status(pod, ready=sh.get("ready"))
    elif "conditions" not in st:
        st["conditions"] = _conditions(st["phase"], st["phase"] == "Running", now_rfc3339())
    if not md.get("labels"):
        md.pop("labels", None)
    if not md.get("annotations"):
        md.pop("annotations", None)
    return pod


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# --------------------------------------------------------------------------------------
# store with resourceVersions and history


class Event:
    __slots__ = ("rv", "type", "key", "obj", "prev")

    def __init__(self, rv, type_, key, obj, prev):
        self.rv, self.type, self.key, self.obj, self.prev = rv, type_, key, obj, prev


class Store:
    def __init__(self, initial_rv: int = 1000, history_cap: int = 10000):
        self.cond = threading.Condition()
        self.rv = initial_rv
        self.compacted_rv = initial_rv   # watch/list at RV >= compacted_rv is servable
        self.history: collections.deque[Event] = collections.deque()
        self.history_cap = history_cap
        self.pods: dict[str, dict] = {}
        self._ipn = 2

    @staticmethod
    def key(ns: str, name: str) -> str:
        return f"{ns}/{name}"

    def alloc_ip(self) -> str:
        n = self._ipn
        self._ipn += 1
        # Loopback only: pprofd scrapes pod IPs, and tests must never send traffic off the machine.
        return f"127.{10 + ((n >> 16) & 63)}.{(n >> 8) & 255}.{max(1, n & 255)}"

    # must hold cond
    def _commit(self, type_: str, key: str, obj: dict, prev: dict | None) -> Event:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj.setdefault("kind", "Pod")
        obj.setdefault("apiVersion", "v1")
        ordered = {"kind": "Pod", "apiVersion": "v1"}
        ordered.update({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
        obj = ordered
        if type_ == "DELETED":
            self.pods.pop(key, None)
        else:
            self.pods[key] = obj
        ev = Event(self.rv, type_, key, obj, prev)
        self.history.append(ev)
        while len(self.history) > self.history_cap:
            old = self.history.popleft()
            self.compacted_rv = old.rv
        self.cond.notify_all()
        return ev

    def create(self, body: dict) -> dict:
        with self.cond:
            pod = build_pod(body, self.alloc_ip)
            md = pod["metadata"]
            k = self.key(md["namespace"], md["name"])
            if k in self.pods:
                raise ApiError(409, "AlreadyExists", f'pods "{md["name"]}" already exists',
                               {"name": md["name"], "kind": "pods"})
            return self._commit("ADDED", k, pod, None).obj

    def update(self, ns: str, name: str, body: dict) -> dict:
        with self.cond:
            k = self.key(ns, name)
            cur = self.pods.get(k)
            if cur is None:
                raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            pod = copy.deepcopy(cur)
            if "patch" in body:
                pod = merge_patch(pod, body["patch"])
            sh = {kk: v for kk, v in body.items() if kk in SHORTHAND_KEYS - {"name", "namespace"}}
            apply_shorthand(pod, sh, self.alloc_ip)
            if "containers" in sh or "phase" in sh or "ready" in sh or body.get("restart"):
                refresh_status(pod, ready=sh.get("ready"), restart=bool(body.get("restart")))
            if body.get("terminating"):
                pod["metadata"]["deletionTimestamp"] = now_rfc3339()
                pod["metadata"]["deletionGracePeriodSeconds"] = pod["spec"].get("terminationGracePeriodSeconds", 30)
            pod["metadata"]["uid"] = cur["metadata"]["uid"]
            pod["metadata"]["name"], pod["metadata"]["namespace"] = name, ns
            return self._commit("MODIFIED", k, pod, cur).obj

    def delete(self, ns: str, name: str, graceful: bool = False) -> dict:
        with self.cond:
            k = self.key(ns, name)
            cur = self.pods.get(k)
            if cur is None:
                raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
            if graceful and not cur["metadata"].get("deletionTimestamp"):
                pod = copy.deepcopy(cur)
                pod["metadata"]["deletionTimestamp"] = now_rfc3339()
                pod["metadata"]["deletionGracePeriodSeconds"] = pod["spec"].get("terminationGracePeriodSeconds", 30)
                cur = self._commit("MODIFIED", k, pod, cur).obj
            return self._commit("DELETED", k, cur, cur).obj

    def compact(self, rv: int | None = None) -> int:
        with self.cond:
            target = self.rv if rv is None else min(int(rv), self.rv)
            while self.history and self.history[0].rv <= target:
                self.history.popleft()
            self.compacted_rv = max(self.compacted_rv, target)
            self.cond.notify_all()
            return self.compacted_rv

    # must hold cond
    def snapshot_at(self, rv: int) -> dict:
        if rv < self.compacted_rv:
            raise Expired(self.compacted_rv)
        state = dict(self.pods)
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            if ev.type == "ADDED":
                state.pop(ev.key, None)
            else:
                state[ev.key] = ev.prev
        return state

    # must hold cond
    def events_since(self, rv: int) -> list:
        if rv < self.compacted_rv:
            raise Expired(self.compacted_rv)
        out = []
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out


# --------------------------------------------------------------------------------------
# continue tokens (same shape as k8s.io/apiserver/pkg/storage: base64url(json))


def encode_continue(rv: int, start_key: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key + "\x00"},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(tok: str):
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        d = json.loads(raw)
        if d.get("v") != "meta.k8s.io/v1":
            raise ValueError("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        rv, start = int(d["rv"]), str(d["start"])
        if rv == 0:
            raise ValueError("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        return rv, start
    except ValueError as e:
        raise ApiError(400, "BadRequest", f"continue key is not valid: {e}" if "continue key" not in str(e) else str(e))
    except Exception as e:  # noqa: BLE001
        raise ApiError(400, "BadRequest", f"continue key is not valid: {e}")


# --------------------------------------------------------------------------------------
# Table rendering (kubectl asks for server-side printing)

POD_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
    {"name": "Ready", "type": "string", "format": "", "description": "The aggregate readiness state of this pod for accepting traffic.", "priority": 0},
    {"name": "Status", "type": "string", "format": "", "description": "The aggregate status of the containers in this pod.", "priority": 0},
    {"name": "Restarts", "type": "string", "format": "", "description": "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", "priority": 0},
    {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
    {"name": "IP", "type": "string", "format": "", "description": "podIP address allocated to the pod.", "priority": 1},
    {"name": "Node", "type": "string", "format": "", "description": "NodeName is a request to schedule this pod onto a specific node.", "priority": 1},
    {"name": "Nominated Node", "type": "string", "format": "", "description": "nominatedNodeName is set when this pod preempts other pods on the node.", "priority": 1},
    {"name": "Readiness Gates", "type": "string", "format": "", "description": "If specified, all readiness gates will be evaluated for pod readiness.", "priority": 1},
]


def human_duration(sec: float) -> str:
    s = int(sec)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def pod_table_row(pod: dict, include_object: str) -> dict:
    md, st = pod["metadata"], pod.get("status", {})
    css = st.get("containerStatuses", []) or []
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in css)
    reason = st.get("phase", "Unknown")
    for c in css:
        w = (c.get("state") or {}).get("waiting")
        if w and w.get("reason"):
            reason = w["reason"]
    if md.get("deletionTimestamp"):
        reason = "Terminating"
    row = {"cells": [md["name"], f"{ready}/{len(pod.get('spec', {}).get('containers', []))}", reason,
                     str(restarts), human_duration(time.time() - parse_rfc3339(md.get("creationTimestamp", ""))),
                     st.get("podIP", "<none>"), pod.get("spec", {}).get("nodeName", "<none>") or "<none>",
                     st.get("nominatedNodeName", "<none>"), "<none>"]}
    if include_object == "Object":
        row["object"] = pod
    elif include_object != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": md}
    return row


def wants_table(accept: str):
    """Return ('v1'|'v1beta1') when the Accept header asks for a meta.k8s.io Table first."""
    for part in (accept or "").split(","):
        params = {}
        bits = [b.strip() for b in part.split(";")]
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                params[k.strip()] = v.strip()
        if bits[0] in ("application/json", "*/*") and params.get("as") == "Table" and \
                params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
        if bits[0] in ("application/json", "*/*") and "as" not in params:
            return None
    return None


# --------------------------------------------------------------------------------------
# the application (shared by restarts of the listener)


class Fault:
    def __init__(self):
        self.lock = threading.Lock()
        self.fail_code = 0
        self.fail_count = 0
        self.fail_verbs = None
        self.fail_retry_after = None
        self.fail_watch_event = False
        self.hang_count = 0        # >0: next N; -1: all until unhang
        self.hang_release = threading.Event()


class FakeApiServer:
    """In-process fake API server. Use start()/stop() or as a context manager.

    Attributes after start(): port, control_port, url, control_url, ca_file.
    """

    def __init__(self, port: int = 0, control_port: int | None = 0, certs_dir: str | None = None,
                 insecure_http: bool = False, token: str | None = None, token_file: str | None = None,
                 kubeconfig_out: str | None = None, kubeconfig_token_file: bool = False,
                 serviceaccount_dir: str | None = None, serviceaccount_namespace: str = "default",
                 bookmark_interval: float = 1.0, default_watch_timeout: float = 1800.0,
                 history_cap: int = 10000, initial_rv: int = 1000, watch_list: bool = True,
                 too_large_wait: float = 3.0, verbose: bool = False):
        self.requested_port = port
        self.requested_control_port = control_port
        self.insecure_http = insecure_http
        self.certs_dir = certs_dir
        self.kubeconfig_out = kubeconfig_out
        self.kubeconfig_token_file = kubeconfig_token_file
        self.sa_dir = serviceaccount_dir
        self.sa_namespace = serviceaccount_namespace
        self.token_file = token_file
        self.store = Store(initial_rv=initial_rv, history_cap=history_cap)
        self.cfg_lock = threading.Lock()
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.watch_list = watch_list
        self.page_scan_limit = None
        self.too_large_wait = too_large_wait
        self.verbose = verbose
        self.fault = Fault()
        self.stopping = threading.Event()
        self.tokens: set[str] = set()
        if token:
            self.tokens = {token}
        elif token_file and os.path.exists(token_file):
            self.tokens = self._read_token_file(token_file)
        if not self.tokens:
            self.tokens = {"fake-token-" + uuid.uuid4().hex}
            if token_file:
                atomic_write(token_file, next(iter(self.tokens)) + "\n", 0o600)
        self.conns_lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.watches: dict[int, dict] = {}
        self._watch_id = 0
        self.stats_lock = threading.Lock()
        self._reset_stats()
        self.api_server = None
        self.api_thread = None
        self.control_server = None
        self.control_thread = None
        self.ssl_ctx = None
        self.ca_file = None
        self.port = None
        self.control_port = None

    # ---------------- lifecycle
    def start(self) -> "FakeApiServer":
        if not self.insecure_http:
            if not self.certs_dir:
                self.certs_dir = tempfile.mkdtemp(prefix="fake-apiserver-certs-")
            paths = ensure_certs(self.certs_dir)
            self.ca_file = paths["ca.crt"]
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(paths["server.crt"], paths["server.key"])
            ctx.set_alpn_protocols(["http/1.1"])
            self.ssl_ctx = ctx
        self._open_api(self.requested_port)
        if self.requested_control_port is not None:
            self.control_server = _ControlHTTPServer(("127.0.0.1", self.requested_control_port), _ControlHandler, self)
            self.control_port = self.control_server.server_address[1]
            self.control_thread = threading.Thread(target=self.control_server.serve_forever,
                                                   kwargs={"poll_interval": 0.1}, daemon=True,
                                                   name="fake-apiserver-control")
            self.control_thread.start()
        self.write_files()
        return self

    def _open_api(self, port: int) -> None:
        srv = _ApiHTTPServer(("127.0.0.1", port), _ApiHandler, self)
        self.api_server = srv
        self.port = srv.server_address[1]
        self.api_thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                           daemon=True, name="fake-apiserver-api")
        self.api_thread.start()

    def down(self, drop_connections: bool = True) -> None:
        srv = self.api_server
        if srv is None:
            return
        self.api_server = None
        srv.shutdown()
        srv.server_close()
        if drop_connections:
            self.drop_connections()

    def up(self) -> None:
        if self.api_server is not None:
            return
        deadline = time.time() + 10
        while True:
            try:
                self._open_api(self.port)
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.fault.hang_release.set()
        with self.store.cond:
            self.store.cond.notify_all()
        self.down(drop_connections=True)
        if self.control_server:
            self.control_server.shutdown()
            self.control_server.server_close()
            self.control_server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    @property
    def scheme(self) -> str:
        return "http" if self.insecure_http else "https"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def token(self) -> str:
        return sorted(self.tokens)[0]

    # ---------------- connections
    def track(self, sock, add: bool) -> None:
        with self.conns_lock:
            if add:
                self.conns.add(sock)
            else:
                self.conns.discard(sock)

    @staticmethod
    def _kill_socket(sock) -> None:
        try:
            # bypass SSLSocket.shutdown(): no close_notify, just a dead TCP stream
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def drop_connections(self) -> int:
        with self.conns_lock:
            socks = list(self.conns)
        for s in socks:
            self._kill_socket(s)
        return len(socks)

    def drop_watches(self) -> int:
        with self.conns_lock:
            ws = list(self.watches.values())
        for w in ws:
            w["dropped"] = True
            self._kill_socket(w["sock"])
        with self.store.cond:
            self.store.cond.notify_all()
        return len(ws)

    # ---------------- tokens and files
    @staticmethod
    def _read_token_file(path: str) -> set:
        with open(path) as f:
            return {ln.strip() for ln in f.read().splitlines() if ln.strip()}

    def set_tokens(self, tokens, write_files: bool = True) -> None:
        tokens = {t for t in tokens if t}
        if not tokens:
            raise ValueError("empty token")
        with self.cfg_lock:
            self.tokens = tokens
        if write_files:
            if self.token_file:
                atomic_write(self.token_file, self.token + "\n", 0o600)
            self.write_files()

    def write_files(self) -> None:
        if self.kubeconfig_out:
            self.write_kubeconfig(self.kubeconfig_out)
        if self.sa_dir:
            self.write_serviceaccount_dir(self.sa_dir)

    def write_kubeconfig(self, path: str) -> None:
        lines = ["apiVersion: v1", "kind: Config", "clusters:", "- name: fake", "  cluster:",
                 f"    server: {json.dumps(self.url)}"]
        if self.ca_file:
            lines.append(f"    certificate-authority: {json.dumps(os.path.abspath(self.ca_file))}")
        lines += ["users:", "- name: fake", "  user:"]
        if self.kubeconfig_token_file and self.token_file:
            lines.append(f"    tokenFile: {json.dumps(os.path.abspath(self.token_file))}")
        else:
            lines.append(f"    token: {json.dumps(self.token)}")
        lines += ["contexts:", "- name: fake", "  context:", "    cluster: fake", "    user: fake",
                  "    namespace: default", "current-context: fake", "preferences: {}", ""]
        atomic_write(path, "\n".join(lines), 0o600)

    def write_serviceaccount_dir(self, d: str) -> None:
        """kubelet AtomicWriter layout: ..<ts>/files, ..data -> ..<ts>, name -> ..data/name."""
        os.makedirs(d, exist_ok=True)
        ts = "..%s_%s" % (time.strftime("%Y_%m_%d_%H_%M_%S"), uuid.uuid4().hex[:9])
        newdir = os.path.join(d, ts)
        os.mkdir(newdir)
        with open(os.path.join(newdir, "token"), "w") as f:
            f.write(self.token)
        with open(os.path.join(newdir, "namespace"), "w") as f:
            f.write(self.sa_namespace)
        if self.ca_file:
            shutil.copyfile(self.ca_file, os.path.join(newdir, "ca.crt"))
        else:
            open(os.path.join(newdir, "ca.crt"), "w").close()
        old = None
        data = os.path.join(d, "..data")
        if os.path.islink(data):
            old = os.readlink(data)
        tmp_link = os.path.join(d, "..data_tmp")
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        os.symlink(ts, tmp_link)
        os.replace(tmp_link, data)
        for name in ("token", "namespace", "ca.crt"):
            p = os.path.join(d, name)
            if not os.path.islink(p):
                if os.path.lexists(p):
                    os.unlink(p)
                os.symlink(os.path.join("..data", name), p)
        if old and old != ts:
            shutil.rmtree(os.path.join(d, old), ignore_errors=True)

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        parts = header.strip().split(" ", 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return False
        with self.cfg_lock:
            return parts[1].strip() in self.tokens

    # ---------------- stats
    def _reset_stats(self) -> None:
        self._stats = {"requests_total": 0, "counts": collections.Counter(),
                       "status_counts": collections.Counter(), "by_params": collections.Counter(),
                       "lists": collections.deque(maxlen=1000), "watches": collections.deque(maxlen=1000),
                       "last_request_headers": {}, "last_request": {}}

    def reset_stats(self) -> None:
        with self.stats_lock:
            self._reset_stats()

    def record_request(self, handler, verb: str, params: dict) -> dict:
        hdrs = {}
        for k, v in handler.headers.items():
            if k.lower() == "authorization":
                v = (v.split(" ", 1)[0] + " <redacted>") if v else v
            hdrs[k] = v
        canon = []
        for k in sorted(params):
            v = params[k]
            if k == "resourceVersion" and v not in ("", "0"):
                v = "<n>"
            elif k in ("timeoutSeconds", "timeout"):
                v = "<t>"
            elif k == "continue":
                v = "<token>"
            canon.append(f"{k}={v}")
        rec = {"time": time.time(), "method": handler.command, "path": urllib.parse.urlsplit(handler.path).path,
               "verb": verb, "params": dict(params), "status": None,
               "user_agent": handler.headers.get("User-Agent", "")}
        with self.stats_lock:
            s = self._stats
            s["requests_total"] += 1
            s["counts"][verb] += 1
            s["by_params"][f"{verb} {rec['path']}?{'&'.join(canon)}"] += 1
            if verb == "list":
                s["lists"].append(rec)
            elif verb == "watch":
                s["watches"].append(rec)
            s["last_request_headers"] = hdrs
            s["last_request"] = rec
        return rec

    def record_status(self, rec: dict | None, code: int) -> None:
        with self.stats_lock:
            if rec is not None:
                rec["status"] = code
            self._stats["status_counts"][str(code)] += 1

    def stats(self) -> dict:
        with self.stats_lock:
            s = self._stats
            out = {"requests_total": s["requests_total"], "counts": dict(s["counts"]),
                   "status_counts": dict(s["status_counts"]), "by_params": dict(s["by_params"]),
                   "lists": [dict(r) for r in s["lists"]], "watches": [dict(r) for r in s["watches"]],
                   "last_request_headers": dict(s["last_request_headers"]),
                   "last_request": dict(s["last_request"])}
        with self.conns_lock:
            out["open_watches"] = len(self.watches)
            out["open_watch_list"] = [{"path": w["path"], "params": w["params"], "since": w["since"],
                                       "events_sent": w["events"]} for w in self.watches.values()]
            out["open_connections"] = len(self.conns)
        with self.store.cond:
            out["resourceVersion"] = str(self.store.rv)
            out["compactedResourceVersion"] = str(self.store.compacted_rv)
            out["pods"] = len(self.store.pods)
            out["history"] = len(self.store.history)
        out["listening"] = self.api_server is not None
        out["port"] = self.port
        return out

    # ---------------- convenience for in-process tests
    def create_pod(self, body: dict) -> dict:
        return self.store.create(body)

    def update_pod(self, ns: str, name: str, **changes) -> dict:
        return self.store.update(ns, name, changes)

    def delete_pod(self, ns: str, name: str, graceful: bool = False) -> dict:
        return self.store.delete(ns, name, graceful)

    def bulk_create(self, count: int, namespace: str = "default", prefix: str = "pod-",
                    template: dict | None = None, start: int = 0, sim_ips: bool = False) -> int:
        for i in range(start, start + count):
            body = dict(template or {})
            body.update({"name": f"{prefix}{i}", "namespace": namespace})
            if sim_ips:
                body["podIP"] = sim_target_ip(i)
            self.store.create(body)
        return count

    def churn(self, count: int, namespace: str | None = None, seed: int | None = None) -> dict:
        rnd = random.Random(seed)
        done = collections.Counter()
        for _ in range(count):
            with self.store.cond:
                keys = [k for k in self.store.pods if namespace is None or k.startswith(namespace + "/")]
            op = rnd.choice(["create", "update", "update", "delete"]) if keys else "create"
            if op == "create":
                ns = namespace or rnd.choice(["default", "team-a", "team-b"])
                self.store.create({"name": f"churn-{uuid.uuid4().hex[:10]}", "namespace": ns,
                                   "labels": {"app": rnd.choice(["api", "web", "worker"])}})
            else:
                k = rnd.choice(keys)
                ns, name = k.split("/", 1)
                try:
                    if op == "update":
                        self.store.update(ns, name, {"patch": {"metadata": {"annotations": {"churn": uuid.uuid4().hex[:8]}}}})
                    else:
                        self.store.delete(ns, name)
                except ApiError:
                    continue
            done[op] += 1
        return dict(done)

    def compact(self, rv=None) -> int:
        return self.store.compact(rv)

    def set_fail(self, code: int, count: int, verbs=None, retry_after=None, watch_event=False) -> None:
        with self.fault.lock:
            self.fault.fail_code, self.fault.fail_count = int(code), int(count)
            self.fault.fail_verbs = set(verbs) if verbs else None
            self.fault.fail_retry_after = retry_after
            self.fault.fail_watch_event = bool(watch_event)

    def set_hang(self, count=None) -> None:
        with self.fault.lock:
            self.fault.hang_release = threading.Event()
            self.fault.hang_count = -1 if not count else int(count)

    def unhang(self) -> None:
        with self.fault.lock:
            self.fault.hang_count = 0
            self.fault.hang_release.set()

    def configure(self, **cfg) -> dict:
        with self.cfg_lock:
            if "bookmark_interval" in cfg:
                self.bookmark_interval = float(cfg["bookmark_interval"])
            if "default_watch_timeout" in cfg:
                self.default_watch_timeout = float(cfg["default_watch_timeout"])
            if "watch_list" in cfg:
                self.watch_list = bool(cfg["watch_list"])
            if "page_scan_limit" in cfg:
                self.page_scan_limit = int(cfg["page_scan_limit"]) if cfg["page_scan_limit"] else None
            if "too_large_wait" in cfg:
                self.too_large_wait = float(cfg["too_large_wait"])
        if "history_cap" in cfg:
            with self.store.cond:
                self.store.history_cap = max(1, int(cfg["history_cap"]))
        with self.cfg_lock:
            return {"bookmark_interval": self.bookmark_interval,
                    "default_watch_timeout": self.default_watch_timeout,
                    "watch_list": self.watch_list, "page_scan_limit": self.page_scan_limit,
                    "too_large_wait": self.too_large_wait, "history_cap": self.store.history_cap}


# --------------------------------------------------------------------------------------
# HTTP servers


class _TrackingServerMixin:
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def process_request_thread(self, request, client_address):
        conn = request
        self.app.track(request, True)
        try:
            if self.ssl_ctx is not None:
                request.settimeout(10)
                conn = self.ssl_ctx.wrap_socket(request, server_side=True)
                self.app.track(request, False)
                self.app.track(conn, True)
                conn.settimeout(None)
            self.finish_request(conn, client_address)
        except Exception:  # noqa: BLE001 - client went away, TLS failure...
            if self.app.verbose:
                import traceback
                traceback.print_exc()
        finally:
            self.app.track(conn, False)
            self.app.track(request, False)
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass


class _ApiHTTPServer(_TrackingServerMixin, socketserver.ThreadingMixIn, http.server.HTTPServer):
    def __init__(self, addr, handler, app: FakeApiServer):
        self.app = app
        self.ssl_ctx = app.ssl_ctx
        super().__init__(addr, handler)


class _ControlHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, handler, app: FakeApiServer):
        self.app = app
        super().__init__(addr, handler)


class _ClientGone(Exception):
    pass


_PODS_PATH = re.compile(r"^/api/v1/(?:namespaces/([^/]+)/)?pods(?:/([^/]+))?/?$")


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""

    @property
    def app(self) -> FakeApiServer:
        return self.server.app

    def log_message(self, fmt, *args):
        if self.app.verbose:
            sys.stderr.write("api: " + (fmt % args) + "\n")

    # ---------------- responses
    def _headers_common(self, code: int, ctype: str, length: int | None, extra=None):
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", "00000000-0000-0000-0000-000000000001")
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", "00000000-0000-0000-0000-000000000002")
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_json(self, code: int, obj, extra=None, ctype="application/json"):
        body = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        self._headers_common(code, ctype, len(body), extra)
        self.wfile.write(body)
        self.wfile.flush()
        self.app.record_status(getattr(self, "_rec", None), code)

    def send_error_status(self, err: ApiError):
        self.send_json(err.code, err.status, err.headers)

    def write_chunk(self, data: bytes):
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (OSError, ValueError) as e:
            raise _ClientGone() from e

    # ---------------- dispatch
    def do_GET(self):
        self._rec = None
        try:
            self._dispatch()
        except _ClientGone:
            self.close_connection = True
        except (BrokenPipeError, ConnectionError, ssl.SSLError, ValueError):
            self.close_connection = True

    def _not_allowed(self):
        self._rec = None
        self.send_error_status(ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def _classify(self, path: str, params: dict):
        m = _PODS_PATH.match(path)
        if m:
            if m.group(2):
                return "get"
            w = params.get("watch")
            if w is not None and w not in ("false", "0"):
                return "watch"
            return "list"
        if path in ("/api", "/apis", "/api/v1", "/version", "/openapi/v2", "/openapi/v3") or path.startswith("/apis/"):
            return "discovery"
        if path in ("/healthz", "/livez", "/readyz"):
            return "health"
        return "other"

    def _dispatch(self):
        app = self.app
        u = urllib.parse.urlsplit(self.path)
        params = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        verb = self._classify(u.path, params)
        self._rec = app.record_request(self, verb, params)
        # --- injected faults
        f = app.fault
        hang_ev = None
        with f.lock:
            if f.hang_count != 0:
                hang_ev = f.hang_release
                if f.hang_count > 0:
                    f.hang_count -= 1
        if hang_ev is not None:
            while not hang_ev.wait(0.2):
                if app.stopping.is_set():
                    break
            self.close_connection = True
            app.record_status(self._rec, 0)
            return
        fail = None
        with f.lock:
            if f.fail_count > 0 and (f.fail_verbs is None or verb in f.fail_verbs):
                f.fail_count -= 1
                fail = (f.fail_code, f.fail_retry_after, f.fail_watch_event)
        if fail:
            code, retry_after, as_event = fail
            st = ApiError(code, REASON_BY_CODE.get(code, "InternalError"),
                          MESSAGE_BY_CODE.get(code, f"injected failure {code}"),
                          headers={"Retry-After": retry_after} if retry_after is not None else None)
            if code == 429:
                st.status["details"] = {"retryAfterSeconds": int(retry_after or 1)}
            if as_event and verb == "watch":
                self._headers_common(200, "application/json", None)
                app.record_status(self._rec, 200)
                self.write_chunk(json.dumps({"type": "ERROR", "object": st.status}, separators=(",", ":")).encode() + b"\n")
                self.write_chunk(b"")
                return
            self.send_error_status(st)
            return
        # --- unauthenticated endpoints
        if verb == "health":
            body = b"ok"
            self._headers_common(200, "text/plain; charset=utf-8", len(body))
            self.wfile.write(body)
            app.record_status(self._rec, 200)
            return
        if not app.authorized(self.headers.get("Authorization")):
            self.send_json(401, UNAUTHORIZED)
            return
        try:
            if verb == "discovery":
                return self._discovery(u.path)
            m = _PODS_PATH.match(u.path)
            if not m:
                raise ApiError(404, "NotFound", "the server could not find the requested resource",
                               {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
            ns = urllib.parse.unquote(m.group(1)) if m.group(1) else None
            if verb == "get":
                return self._get(ns, urllib.parse.unquote(m.group(2)))
            if verb == "watch":
                return self._watch(ns, params)
            return self._list(ns, params)
        except ApiError as e:
            self.send_error_status(e)

    # ---------------- discovery
    def _discovery(self, path: str):
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake",
                                        "gitCommit": "0" * 40, "gitTreeState": "clean",
                                        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4",
                                        "compiler": "gc", "platform": "linux/amd64"})
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": f"127.0.0.1:{self.app.port}"}]})
        if path == "/apis":
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                 "verbs": ["get", "list", "watch"], "shortNames": ["po"], "categories": ["all"],
                 "storageVersionHash": "xPOwRZ+Yhw8="}]})
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # ---------------- get
    def _get(self, ns, name):
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        st = self.app.store
        with st.cond:
            pod = st.pods.get(Store.key(ns, name))
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        self.send_json(200, pod)

    # ---------------- list
    @staticmethod
    def _parse_rv(s: str, what="resourceVersion") -> int:
        try:
            v = int(s)
            if v < 0:
                raise ValueError
            return v
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid resource version "{s}"' if what == "resourceVersion"
                           else f"invalid {what}: {s}")

    def _wait_for_rv(self, rv: int) -> None:
        """Not-older-than reads of a future RV wait, then fail with 504 ResourceVersionTooLarge."""
        st = self.app.store
        deadline = time.time() + self.app.too_large_wait
        while st.rv < rv:
            left = deadline - time.time()
            if left <= 0 or self.app.stopping.is_set():
                raise ApiError(504, "Timeout", f"Too large resource version: {rv}, current: {st.rv}",
                               {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                "retryAfterSeconds": 1}, headers={"Retry-After": 1})
            st.cond.wait(min(left, 0.2))

    def _list(self, ns, params):
        app = self.app
        pred = Predicate(params.get("labelSelector", ""), params.get("fieldSelector", ""), ns)
        rv_s = params.get("resourceVersion")
        match = params.get("resourceVersionMatch", "")
        cont = params.get("continue", "")
        limit_s = params.get("limit", "")
        if "sendInitialEvents" in params:
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                           "sendInitialEvents is forbidden for list",
                           {"kind": "ListOptions", "group": "meta.k8s.io",
                            "causes": [{"reason": "FieldValueForbidden", "message": "Forbidden: sendInitialEvents is forbidden for list",
                                        "field": "sendInitialEvents"}]})
        if match:
            if match not in ("NotOlderThan", "Exact"):
                raise ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "{match}"')
            if not rv_s:
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                               "resourceVersionMatch is forbidden unless resourceVersion is provided")
            if cont:
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                               "resourceVersionMatch is forbidden when continue is provided")
            if match == "Exact" and rv_s == "0":
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                               'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        limit = 0
        if limit_s:
            try:
                limit = max(0, int(limit_s))
            except ValueError:
                raise ApiError(400, "BadRequest", f'invalid limit "{limit_s}"')
        st = app.store
        with app.cfg_lock:
            scan_limit = app.page_scan_limit
        with st.cond:
            start_key = None
            consistent = True
            if cont:
                if rv_s not in (None, "", "0"):
                    raise ApiError(400, "BadRequest", "specifying resource version is not allowed when using continue")
                snap_rv, start = decode_continue(cont)
                start_key = start.rstrip("\x00")
                if snap_rv < 0:
                    consistent = False
                    state, snap_rv = st.pods, st.rv
                else:
                    try:
                        state = st.snapshot_at(snap_rv)
                    except Expired:
                        newtok = encode_continue(-1, start_key)
                        raise ApiError(410, "Expired",
                                       "The provided continue parameter is too old to display a consistent list "
                                       "result. You can start a new list without the continue parameter, or use "
                                       "the continue token in this response to retrieve the remainder of the "
                                       "results. Continuing with the provided token results in an inconsistent "
                                       "list - objects that were created, modified, or deleted between the time "
                                       "the first chunk was returned and now may show up in the list.",
                                       list_meta={"continue": newtok})
            elif rv_s in (None, ""):
                state, snap_rv = st.pods, st.rv
            elif rv_s == "0":
                state, snap_rv = st.pods, st.rv
                limit = 0  # served from the watch cache: limit is ignored
            else:
                want = self._parse_rv(rv_s)
                exact = match == "Exact" or (not match and limit > 0)
                if exact:
                    if want > st.rv:
                        self._wait_for_rv(want)
                    try:
                        state = st.snapshot_at(want)
                    except Expired:
                        raise ApiError(410, "Expired", "The resourceVersion for the provided list is too old.")
                    snap_rv = want
                else:
                    self._wait_for_rv(want)
                    state, snap_rv = st.pods, st.rv
            # etcd semantics: the next page starts at lastKey + "\x00", i.e. every key > lastKey
            prefix = "" if ns is None else ns + "/"
            keys = sorted(k for k in state if k.startswith(prefix) and (start_key is None or k > start_key))
            items, next_key, scanned = [], None, 0
            next_idx = None
            for i, k in enumerate(keys):
                if limit and (len(items) >= limit or (scan_limit and scanned >= scan_limit)):
                    next_key, next_idx = keys[i - 1], i
                    break
                scanned += 1
                pod = state[k]
                if pred.matches(pod):
                    items.append(pod)
            meta = {"resourceVersion": str(snap_rv)}
            if next_key is not None:
                meta["continue"] = encode_continue(snap_rv if consistent else -1, next_key)
                if pred.empty() and consistent:
                    meta["remainingItemCount"] = len(keys) - next_idx
            body = {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items}
        table_v = wants_table(self.headers.get("Accept", ""))
        if table_v:
            inc = params.get("includeObject", "Metadata")
            body = {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_v}", "metadata": meta,
                    "columnDefinitions": POD_COLUMNS,
                    "rows": [pod_table_row(p, inc) for p in items]}
            return self.send_json(200, body, ctype=f"application/json;as=Table;v={table_v};g=meta.k8s.io")
        self.send_json(200, body)

    # ---------------- watch
    def _watch(self, ns, params):
        app = self.app
        pred = Predicate(params.get("labelSelector", ""), params.get("fieldSelector", ""), ns)
        rv_s = params.get("resourceVersion", "")
        match = params.get("resourceVersionMatch", "")
        sie_s = params.get("sendInitialEvents")
        bookmarks = params.get("allowWatchBookmarks", "") in ("true", "1", "True")
        if params.get("continue"):
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: continue: Forbidden: '
                           "continue is not allowed with watch")
        if sie_s is not None:
            sie = sie_s in ("true", "1", "True")
            with app.cfg_lock:
                wl = app.watch_list
            if not wl:
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                               "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                               {"kind": "ListOptions", "group": "meta.k8s.io",
                                "causes": [{"reason": "FieldValueForbidden",
                                            "message": "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                                            "field": "sendInitialEvents"}]})
            if sie and match != "NotOlderThan":
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                               "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
        else:
            sie = None
            if match:
                raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                               "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
        try:
            timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid timeoutSeconds "{params["timeoutSeconds"]}"')
        with app.cfg_lock:
            if timeout is None:
                timeout = app.default_watch_timeout
            bm_interval = app.bookmark_interval
        want = None if rv_s in ("", "0") else self._parse_rv(rv_s)
        initial = sie if sie is not None else (want is None)
        st = app.store
        table_v = wants_table(self.headers.get("Accept", ""))
        include_obj = params.get("includeObject", "Metadata")

        # --- headers (200) go out first; everything afterwards is reported as ERROR events
        self._headers_common(200, f"application/json;as=Table;v={table_v};g=meta.k8s.io" if table_v
                             else "application/json", None)
        app.record_status(self._rec, 200)
        with app.conns_lock:
            app._watch_id += 1
            wid = app._watch_id
            w = {"sock": self.connection, "path": urllib.parse.urlsplit(self.path).path, "params": params,
                 "since": time.time(), "events": 0, "dropped": False}
            app.watches[wid] = w
        first_table = [True]

        def enc(type_, obj):
            if table_v and type_ in ("ADDED", "MODIFIED", "DELETED"):
                t = {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_v}", "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                     "rows": [pod_table_row(obj, include_obj)]}
                if first_table[0]:
                    t["columnDefinitions"] = POD_COLUMNS
                    first_table[0] = False
                obj = t
            return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"

        def error_event(status):
            return json.dumps({"type": "ERROR", "object": status}, separators=(",", ":")).encode() + b"\n"

        def bookmark(rv, initial_end=False):
            md = {"resourceVersion": str(rv)}
            if initial_end:
                md["annotations"] = {"k8s.io/initial-events-end": "true"}
            return json.dumps({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": md}},
                              separators=(",", ":")).encode() + b"\n"

        def out(data):
            self.write_chunk(data)
            w["events"] += 1

        start = time.monotonic()
        deadline = start + timeout
        normal_end = True
        try:
            pending = []
            with st.cond:
                pos = None
                err = None
                if want is not None and want > st.rv:
                    try:
                        self._wait_for_rv(want)
                    except ApiError as e:
                        err = e.status
                if err is None:
                    if initial:
                        # RV unset/"0", or NotOlderThan n (already waited for n): current state
                        state, pos = st.pods, st.rv
                        for k in sorted(state):
                            if pred.matches(state[k]):
                                pending.append(enc("ADDED", state[k]))
                        if sie and bookmarks:
                            pending.append(bookmark(pos, initial_end=True))
                    elif want is None:  # sendInitialEvents=false with RV unset/"0": start now
                        pos = st.rv
                    else:
                        pos = want
                        if pos < st.compacted_rv:
                            err = status_obj(410, "Expired", f"too old resource version: {pos} ({st.compacted_rv})")
            for data in pending:
                out(data)
            if err is not None:
                out(error_event(err))
                return
            next_bm = time.monotonic() + bm_interval if bookmarks and bm_interval > 0 else None
            while True:
                with st.cond:
                    while True:
                        if app.stopping.is_set() or w["dropped"]:
                            normal_end = False
                            break
                        nowm = time.monotonic()
                        if st.rv > pos or nowm >= deadline or (next_bm is not None and nowm >= next_bm):
                            break
                        wake = deadline if next_bm is None else min(deadline, next_bm)
                        st.cond.wait(max(0.01, min(1.0, wake - nowm)))
                    if not normal_end:
                        return
                    try:
                        evs = st.events_since(pos)
                    except Expired as e:
                        evs = None
                        errst = status_obj(410, "Expired", f"too old resource version: {pos} ({e.oldest})")
                    else:
                        pos = st.rv
                if evs is None:
                    out(error_event(errst))
                    return
                for ev in evs:
                    new_ok = pred.matches(ev.obj) if ev.type != "DELETED" else False
                    old_ok = pred.matches(ev.prev) if ev.prev is not None else False
                    if ev.type == "DELETED":
                        if old_ok:
                            out(enc("DELETED", ev.obj))
                    elif new_ok and not old_ok:
                        out(enc("ADDED", ev.obj))
                    elif new_ok and old_ok:
                        out(enc(ev.type, ev.obj))
                    elif old_ok and not new_ok:
                        gone = copy.deepcopy(ev.prev)
                        gone["metadata"]["resourceVersion"] = str(ev.rv)
                        out(enc("DELETED", gone))
                nowm = time.monotonic()
                if nowm >= deadline:
                    return
                if next_bm is not None and nowm >= next_bm:
                    out(bookmark(pos))
                    with app.cfg_lock:
                        bm_interval = app.bookmark_interval
                    next_bm = nowm + bm_interval if bm_interval > 0 else None
        finally:
            with app.conns_lock:
                app.watches.pop(wid, None)
            if normal_end and not w["dropped"] and not app.stopping.is_set():
                self.write_chunk(b"")
            else:
                self.close_connection = True


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> FakeApiServer:
        return self.server.app

    def log_message(self, fmt, *args):
        if self.app.verbose:
            sys.stderr.write("control: " + (fmt % args) + "\n")

    def _reply(self, code: int, obj):
        body = json.dumps(obj, indent=None, separators=(",", ":"), default=str).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0:
            return {}
        raw = self.rfile.read(n)
        return json.loads(raw) if raw.strip() else {}

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        app = self.app
        if path == "/stats":
            return self._reply(200, dict(app.stats(), ok=True))
        if path == "/pods":
            with app.store.cond:
                items = [app.store.pods[k] for k in sorted(app.store.pods)]
                rv = str(app.store.rv)
            return self._reply(200, {"ok": True, "resourceVersion": rv, "items": items})
        if path in ("", "/healthz"):
            return self._reply(200, {"ok": True, "url": app.url})
        self._reply(404, {"ok": False, "error": "not found"})

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        app = self.app
        try:
            b = self._body()
            st = app.store
            if path == "/pods":
                pod = st.create(b)
                return self._reply(200, {"ok": True, "pod": pod, "resourceVersion": pod["metadata"]["resourceVersion"]})
            if path == "/pods/bulk":
                n = app.bulk_create(int(b.get("count", 1)), b.get("namespace", "default"),
                                    b.get("prefix", "pod-"), b.get("template"), int(b.get("start", 0)),
                                    bool(b.get("sim_ips", False)))
                return self._reply(200, {"ok": True, "created": n, "resourceVersion": str(st.rv)})
            if path == "/pods/update":
                ns, name = b.pop("namespace", "default"), b.pop("name")
                pod = st.update(ns, name, b)
                return self._reply(200, {"ok": True, "pod": pod, "resourceVersion": pod["metadata"]["resourceVersion"]})
            if path == "/pods/delete":
                pod = st.delete(b.get("namespace", "default"), b["name"], bool(b.get("graceful")))
                return self._reply(200, {"ok": True, "pod": pod, "resourceVersion": pod["metadata"]["resourceVersion"]})
            if path == "/churn":
                done = app.churn(int(b.get("count", 10)), b.get("namespace"), b.get("seed"))
                return self._reply(200, {"ok": True, "ops": done, "resourceVersion": str(st.rv)})
            if path == "/compact":
                rv = app.compact(b.get("resourceVersion"))
                return self._reply(200, {"ok": True, "compactedResourceVersion": str(rv)})
            if path == "/fail":
                app.set_fail(int(b.get("code", 500)), int(b.get("count", 1)), b.get("verbs"),
                             b.get("retry_after"), b.get("watch_event", False))
                return self._reply(200, {"ok": True})
            if path == "/hang":
                app.set_hang(b.get("count"))
                return self._reply(200, {"ok": True})
            if path == "/unhang":
                app.unhang()
                return self._reply(200, {"ok": True})
            if path == "/drop_watches":
                return self._reply(200, {"ok": True, "dropped": app.drop_watches()})
            if path == "/down":
                app.down(bool(b.get("drop_connections", True)))
                return self._reply(200, {"ok": True})
            if path == "/up":
                app.up()
                return self._reply(200, {"ok": True, "port": app.port})
            if path == "/token":
                if b.get("reload"):
                    if not app.token_file:
                        raise ValueError("no token file")
                    app.set_tokens(app._read_token_file(app.token_file), write_files=False)
                    app.write_files()
                else:
                    toks = b.get("tokens") or [b.get("token")]
                    app.set_tokens(toks, bool(b.get("write_files", True)))
                return self._reply(200, {"ok": True, "valid_tokens": len(app.tokens)})
            if path == "/config":
                return self._reply(200, dict(app.configure(**b), ok=True))
            if path == "/stats/reset":
                app.reset_stats()
                return self._reply(200, {"ok": True})
            if path == "/shutdown":
                self._reply(200, {"ok": True})
                threading.Thread(target=_request_shutdown, daemon=True).start()
                return
            return self._reply(404, {"ok": False, "error": "not found"})
        except ApiError as e:
            return self._reply(e.code, {"ok": False, "error": e.status["message"], "status": e.status})
        except (KeyError, ValueError, TypeError) as e:
            return self._reply(400, {"ok": False, "error": f"{type(e).__name__}: {e}"})


_shutdown_event = threading.Event()


def _request_shutdown():
    time.sleep(0.05)
    _shutdown_event.set()


# --------------------------------------------------------------------------------------
# CLI


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="fake Kubernetes API server (pods) for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--certs", default=None, help="directory for ca.crt/ca.key/server.crt/server.key (reused)")
    ap.add_argument("--insecure-http", action="store_true", help="serve plain HTTP (debugging)")
    ap.add_argument("--token", default=None, help="valid bearer token")
    ap.add_argument("--token-file", default=None, help="file with valid token(s), one a line; created if absent")
    ap.add_argument("--kubeconfig-out", default=None)
    ap.add_argument("--kubeconfig-token-file", action="store_true",
                    help="reference --token-file via tokenFile instead of an inline token")
    ap.add_argument("--serviceaccount-dir", default=None)
    ap.add_argument("--serviceaccount-namespace", default="default")
    ap.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds; 0 disables")
    ap.add_argument("--default-watch-timeout", type=float, default=1800.0)
    ap.add_argument("--history-cap", type=int, default=10000)
    ap.add_argument("--initial-rv", type=int, default=1000)
    ap.add_argument("--initial-pods", type=int, default=0)
    ap.add_argument("--no-watch-list", action="store_true", help="reject sendInitialEvents (feature gate off)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    srv = FakeApiServer(port=a.port, control_port=a.control_port, certs_dir=a.certs,
                        insecure_http=a.insecure_http, token=a.token, token_file=a.token_file,
                        kubeconfig_out=a.kubeconfig_out, kubeconfig_token_file=a.kubeconfig_token_file,
                        serviceaccount_dir=a.serviceaccount_dir,
                        serviceaccount_namespace=a.serviceaccount_namespace,
                        bookmark_interval=a.bookmark_interval, default_watch_timeout=a.default_watch_timeout,
                        history_cap=a.history_cap, initial_rv=a.initial_rv,
                        watch_list=not a.no_watch_list, verbose=a.verbose)
    srv.start()
    if a.initial_pods:
        srv.bulk_create(a.initial_pods)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _shutdown_event.set())
    print(f"ready {srv.url} control {srv.control_url}", flush=True)
    try:
        while not _shutdown_event.wait(0.5):
            pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
