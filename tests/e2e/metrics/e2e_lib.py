"""Helpers shared by the end-to-end tests of tests/e2e/metrics: free ports,
processes started and stopped with bounded waits, Prometheus' HTTP API."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# ctest skips a test that exits with this code (SKIP_RETURN_CODE).
SKIP = 77


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line(process, timeout):
    """The next line of `process`'s stdout, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    line = b""
    fd = process.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            if process.poll() is not None:
                return None
            continue
        byte = os.read(fd, 1)
        if not byte:
            return None
        if byte == b"\n":
            return line.decode()
        line += byte
    return None


def start_tshared(tshared, args, timeout=60):
    """Starts tshared with `args`; returns (process, "host:port" of gRPC)."""
    process = subprocess.Popen([tshared] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    line = read_line(process, timeout)
    match = re.search(r"listening on (\S+)", line or "")
    if not match:
        stop(process)
        fail(f"tshared {' '.join(args)} did not start: stdout {line!r}, "
             f"stderr {process.stderr.read().decode()!r}")
    return process, match.group(1)


def stop(process, timeout=30, sig=signal.SIGTERM):
    """Sends `sig` and waits; kills after `timeout`. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None
    return process.returncode


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


class Prometheus:
    """A real Prometheus server on 127.0.0.1, with its HTTP API."""

    def __init__(self, binary, config, data_dir, log_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}",
             f"--storage.tsdb.path={data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"prometheus exited with {self.process.returncode}; "
                     f"see {self.log.name}")
            try:
                if http_get(self.base + "/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        fail(f"prometheus not ready after {timeout}s")

    def api(self, path, **params):
        """GET /api/v1/<path>; returns the decoded JSON (errors included)."""
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            return json.loads(http_get(url)[1])
        except urllib.error.HTTPError as error:  # 400/422: a bad query
            return json.loads(error.read().decode())

    def query(self, expr):
        return self.api("query", query=expr)

    def wait_for(self, expr, predicate, timeout, what):
        """Polls `expr` until predicate(result list) holds; fails after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.query(expr)
            if last.get("status") == "success" and predicate(
                    last["data"]["result"]):
                return last["data"]["result"]
            time.sleep(0.5)
        fail(f"{what}: {expr} never held within {timeout}s; last answer {last}")

    def close(self):
        stop(self.process)
        self.log.close()


def values(result):
    """The float values of an instant-vector result."""
    return [float(sample["value"][1]) for sample in result]
