"""Shared plumbing for pprofd's integration tests: free ports, child processes that always get
cleaned up, the real Go demo app, pprofd itself, and small HTTP helpers. Standard library only.
Everything listens on 127.0.0.1 and every wait is bounded."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

SOURCE_DIR = pathlib.Path(os.environ.get("PPROFD_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
PPROFD_BIN = os.environ.get("PPROFD_BIN", str(SOURCE_DIR / "build" / "src" / "pprofd"))
BUILD_DIR = pathlib.Path(os.environ.get("PPROFD_TEST_BUILD_DIR", tempfile.gettempdir()))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def metric_values(text, name):
    """{labels-string: value} for every sample of the metric `name` in Prometheus text."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key[len(name):]] = float(value)
    return out


def metric_sum(text, name, **labels):
    total = 0.0
    for key, value in metric_values(text, name).items():
        if all(f'{k}="{v}"' in key for k, v in labels.items()):
            total += value
    return total


class Processes:
    """Starts children in their own process group and kills whatever is left at the end."""

    def __init__(self, log_dir):
        self.children = []
        self.log_dir = pathlib.Path(log_dir)

    def start(self, name, argv, env=None):
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=self.log_dir)
        proc.log_path = self.log_dir / f"{name}.log"
        proc.log_file = log
        self.children.append(proc)
        return proc

    def log_of(self, proc):
        return pathlib.Path(proc.log_path).read_text(errors="replace")

    def close(self):
        for proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            proc.log_file.close()


_demo_app = None


def demo_app_binary():
    """Builds examples/demo-app once per test process (Go's build cache makes repeats cheap)."""
    global _demo_app
    if _demo_app is None:
        out = BUILD_DIR / "demo-app"
        env = dict(os.environ, GOPROXY="off", GOTOOLCHAIN="local", GOFLAGS="")
        subprocess.run(["go", "build", "-o", str(out), "."], cwd=SOURCE_DIR / "examples" / "demo-app",
                       env=env, check=True, timeout=300)
        _demo_app = str(out)
    return _demo_app


def start_demo_app(procs, name, host="127.0.0.1"):
    port = free_port()
    proc = procs.start(name, [demo_app_binary(), "-listen", f"{host}:{port}", "-name", name])
    wait_until(lambda: http_get(f"http://{host}:{port}/debug/pprof/")[0] == 200, 20,
               what=f"demo app {name}")
    return f"{host}:{port}"


def write_config(directory, text):
    path = pathlib.Path(directory) / "pprofd.yaml"
    path.write_text(text)
    return path


def start_pprofd(procs, config_path, name="pprofd", extra_args=(), env=None):
    port = free_port()
    proc = procs.start(name, [PPROFD_BIN, "run", f"--config.file={config_path}",
                              f"--web.listen-address=127.0.0.1:{port}", *extra_args], env=env)
    proc.metrics_url = f"http://127.0.0.1:{port}/metrics"
    proc.base_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_get(proc.base_url + "/readyz")[0] == 200 or proc.poll() is not None, 20,
               what="pprofd ready")
    if proc.poll() is not None:
        raise AssertionError("pprofd exited at startup:\n" + procs.log_of(proc))
    return proc


def metrics_text(proc):
    status, body = http_get(proc.metrics_url)
    assert status == 200, f"/metrics answered {status}"
    return body.decode()


def stop(proc, timeout):
    """SIGTERM, then the exit code and the seconds it took (SIGKILL and raise past timeout)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"process did not exit within {timeout}s of SIGTERM")
    return code, time.monotonic() - started


def stored_profiles(directory):
    """[(profile path, sidecar dict)] for every stored profile under a file sink directory."""
    out = []
    for path in sorted(pathlib.Path(directory).rglob("*.pb.gz")):
        sidecar = path.with_name(path.name[: -len(".pb.gz")] + ".json")
        out.append((path, json.loads(sidecar.read_text())))
    return out


def go_pprof_raw(path):
    return subprocess.run(["go", "tool", "pprof", "-raw", str(path)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, GOTOOLCHAIN="local"))


def proc_status_kib(pid, field):
    """A kB figure from /proc/PID/status, e.g. VmRSS or VmHWM."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_peak_kib(pid):
    return proc_status_kib(pid, "VmHWM")


def make_certs(directory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
    Returns a dict of PEM paths: ca, server_cert, server_key, client_cert, client_key, and
    other_ca (a CA that signed nothing here, for negative tests)."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    for ca in ("ca", "other_ca"):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.pem"), "-days", "2",
            "-subj", f"/CN=pprofd test {ca}")
    ext = d / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, extfile in (("server", ext), ("client", None)):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / f"{who}.key"), "-out", str(d / f"{who}.csr"), "-subj", f"/CN=pprofd test {who}")
        sign = ["x509", "-req", "-in", str(d / f"{who}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                "-CAcreateserial", "-out", str(d / f"{who}.pem"), "-days", "2"]
        if extfile:
            sign += ["-extfile", str(extfile)]
        run(*sign)
    return {"ca": d / "ca.pem", "other_ca": d / "other_ca.pem", "server_cert": d / "server.pem",
            "server_key": d / "server.key", "client_cert": d / "client.pem", "client_key": d / "client.key"}
