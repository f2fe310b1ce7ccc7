"""Fixtures for the independent judges: a real `vestnik serve` process on a fresh SQLite file and
a real HTTP receiver that records every request Vestnik delivers."""
import http.server
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

TOKEN = "judge-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} deliveries, got {len(self.requests)}")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def vestnik(tmp_path):
    binary = os.environ.get("VESTNIK_BIN", "target/debug/vestnik")
    port = free_port()
    env = dict(os.environ, VESTNIK_API_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}",
         "--database", f"sqlite://{tmp_path / 'vestnik.db'}", "--allow-target", "127.0.0.0/8"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v1/health/ping", timeout=1)
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"vestnik did not start: {proc.stdout.read().decode()}")
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


class Demo:
    """A running `vestnik demo` process and its three URLs."""

    def __init__(self, proc, ports):
        self.proc = proc
        self.gateway, self.insurer, self.clinic = (f"http://127.0.0.1:{p}" for p in ports)


@pytest.fixture
def demo_factory(tmp_path):
    started = []

    def start(*args):
        binary = os.environ.get("VESTNIK_BIN", "target/debug/vestnik")
        ports = [free_port(), free_port(), free_port()]
        proc = subprocess.Popen(
            [binary, "demo", "--ports", ",".join(map(str, ports)), "--data-dir", str(tmp_path / f"demo{len(started)}"),
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        demo = Demo(proc, ports)
        started.append(demo)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{demo.clinic}/api/stats", timeout=1)
                urllib.request.urlopen(f"{demo.insurer}/stats", timeout=1)
                return demo
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"vestnik demo did not start: {proc.stdout.read().decode()}")
                time.sleep(0.1)

    yield start
    for demo in started:
        demo.proc.terminate()
        demo.proc.wait(timeout=30)
