"""A real Triton server for tests: ``fcn-edge serve`` through PyTriton, on 127.0.0.1.

PyTriton's Python backend needs an interpreter with a shared libpython, so the server runs
under a second venv made from Debian's python3 (``make triton-venv``; or
``$FCN_EDGE_TRITON_PYTHON``) with this checkout first on its path. Tests skip, saying how to
make that venv, where it is missing. The server runs in its own process group so a test can
kill it whole (tritonserver and the Python backend stubs with it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[1]
TRITON_VENV = REPO / ".venv-triton"
PYTHON_ENV = "FCN_EDGE_TRITON_PYTHON"
MAKE_HINT = "make triton-venv (a venv from Debian's /usr/bin/python3 with nvidia-pytriton; see Makefile)"


def triton_python() -> str:
    """The serving interpreter, or a pytest skip naming how to make it."""
    python = os.environ.get(PYTHON_ENV) or str(TRITON_VENV / "bin" / "python")
    if not Path(python).is_file():
        pytest.skip(f"no serving venv at {python}: {MAKE_HINT}")
    probe = subprocess.run([python, "-c", "import pytriton, onnxruntime"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"{python} cannot import pytriton/onnxruntime ({probe.stderr.strip().splitlines()[-1:]}): {MAKE_HINT}")
    return python


def free_ports(count: int) -> List[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Server:
    process: subprocess.Popen
    name: str
    http_port: int
    grpc_port: int
    metrics_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"triton://127.0.0.1:{self.grpc_port}/{self.name}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL to the server's whole process group: the server is gone, no goodbye."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def start_server(model: Path, name: str, log: Path, *extra: str, timeout: float = 90.0) -> Server:
    """``fcn-edge serve MODEL`` on free loopback ports; returns once the model is ready."""
    python = triton_python()
    http, grpc, metrics = free_ports(3)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    command = [python, "-m", "fcn_edge", "serve", str(model), "--name", name, "--host", "127.0.0.1",
               "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
               "--threads", "1", *extra]
    handle = open(log, "w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    handle.close()
    server = Server(process, name, http, grpc, metrics, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fcn-edge serve exited with {process.returncode}:\n{server.output()[-3000:]}")
        if "SIGTERM stops the server" in server.output():
            return server
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"fcn-edge serve was not ready after {timeout:.0f} s:\n{server.output()[-3000:]}")


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
