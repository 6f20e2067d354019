"""Clients of the browser page for the tests and tools: plain HTTP requests, an MJPEG reader
that counts the frames it receives, a stalled client that connects and never reads; and a
page fed drawn frames by a thread, to test the server without a model."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from fcn_edge.artifacts import meta_for_classes
from fcn_edge.video.live import FrameEvent
from fcn_edge.video.web import ViewAddress, ViewConfig, ViewServer
from video_fixtures import clip_frame


def request(url: str, path: str, method: str = "GET", body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None, timeout: float = 10.0) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of one request; redirects are not followed."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post_control(url: str, stream: str, payload, headers: Optional[Dict[str, str]] = None) -> Tuple[int, dict]:
    status, _, body = request(url, f"/api/control/{stream}", "POST", json.dumps(payload).encode(),
                              {"Content-Type": "application/json", **(headers or {})})
    return status, json.loads(body)


def stats(url: str, headers: Optional[Dict[str, str]] = None) -> dict:
    status, _, body = request(url, "/api/stats", headers=headers)
    assert status == 200, (status, body)
    return json.loads(body)


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition()`` until it returns something true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class MjpegReader(threading.Thread):
    """Reads ``/stream/NAME.mjpg`` as fast as it arrives and counts its parts (which end at
    the boundary: the server sends no Content-Length); keeps the newest JPEG and, with
    ``keep=True``, every JPEG with the time it arrived."""

    def __init__(self, url: str, stream: str = "0", headers: Optional[Dict[str, str]] = None, keep: bool = False):
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.path = f"/stream/{stream}.mjpg"
        self.headers = headers or {}
        self.keep = keep
        self.frames = 0
        self.bytes = 0
        self.last_jpeg: Optional[bytes] = None
        self.arrivals: List[Tuple[float, bytes]] = []  # (time.time() received, JPEG), with keep=True
        self.status: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._halt = threading.Event()
        self._socket: Optional[socket.socket] = None

    def run(self) -> None:
        try:
            self._socket = socket.create_connection(self.address, timeout=10)
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            self._socket.sendall(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            buffer = bytearray()
            while b"\r\n\r\n" not in buffer:
                buffer += self._recv()
            head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
            self.status = int(head.split()[1])
            if self.status != 200:
                return
            boundary = b"--" + head.split(b"boundary=")[1].split(b"\r\n")[0].strip()
            delimiter = b"\r\n" + boundary
            buffer = bytearray(rest)
            in_headers, searched = True, 0
            while not self._halt.is_set():
                if in_headers:
                    end = buffer.find(b"\r\n\r\n")
                    if end >= 0:
                        assert buffer.startswith(boundary), bytes(buffer[:40])
                        del buffer[:end + 4]
                        in_headers, searched = False, 0
                        continue
                else:
                    end = buffer.find(delimiter, searched)
                    if end >= 0:
                        self._part(bytes(buffer[:end]))
                        del buffer[:end + 2]  # keep the boundary: it starts the next part's headers
                        in_headers = True
                        continue
                    searched = max(0, len(buffer) - len(delimiter))
                buffer += self._recv()
        except (OSError, ValueError) as exc:
            if not self._halt.is_set():
                self.error = exc

    def _recv(self) -> bytes:
        data = self._socket.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the stream")
        return data

    def _part(self, jpeg: bytes) -> None:
        if self.keep:
            self.arrivals.append((time.time(), jpeg))
        self.last_jpeg = jpeg
        self.frames += 1
        self.bytes += len(jpeg)

    def stop(self) -> None:
        self._halt.set()
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
        self.join(5)


class StalledClient:
    """Asks for the stream with a tiny receive buffer and never reads a byte of it."""

    def __init__(self, url: str, stream: str = "0"):
        parts = urlsplit(url)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.socket.connect((parts.hostname, parts.port))
        self.socket.sendall(f"GET /stream/{stream}.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def close(self) -> None:
        self.socket.close()


@contextlib.contextmanager
def fed_page(token=None, streams=("0",)):
    """A page whose streams are fed drawn frames by a thread (no model): the server alone."""
    meta = meta_for_classes("m", ["background", "road", "car"])
    page = ViewServer(ViewConfig(ViewAddress("127.0.0.1", 0), token)).start()
    feeds = [page.add_stream(name, meta, label=f"camera {name}") for name in streams]
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.wait(0.02):
            frame = clip_frame(i, (48, 64))
            mask = (frame[..., 0] > 50).astype(np.uint8)
            for stream in feeds:
                stream.publish(FrameEvent(i, time.time(), frame, mask, frame))
            i += 1

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield page
    finally:
        stop.set()
        thread.join(2)
        page.close()
