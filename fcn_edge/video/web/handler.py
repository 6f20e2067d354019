"""Answering the page's requests: the gate first, then the route (see :mod:`.server`).

MJPEG is the stream every browser shows in an ``<img>`` without a plug-in, needs no
codec on the device beyond the JPEG encoder OpenCV has, and adds no buffering. Chromium
shows a part only once it has parsed the headers of the next one, so each JPEG is
followed at once by the boundary and the next part's headers (hence no Content-Length:
parts end at the boundary, as multipart allows); otherwise every frame would wait for the
next, a whole frame interval (measured: 555 ms instead of 45 ms at 2 fps). WebRTC would
cost less bandwidth but needs an H.264 encoder, a signalling exchange and STUN on the
device for the same single-hop use.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from fcn_edge.errors import FcnEdgeError, MetaError
from fcn_edge.video.web.streams import ViewStream

log = logging.getLogger(__name__)

BOUNDARY = "fcnedgeframe"
PART_HEAD = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
MAX_CONTROL_BYTES = 4096
_WAIT_S = 1.0  # how often a waiting stream or event connection looks at the closing flag
_FRAME_WAIT_S = 5.0
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
)


class PageHandler(BaseHTTPRequestHandler):
    """One connection; ``self.server.view`` is the :class:`~fcn_edge.video.web.server.ViewServer`."""

    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "fcn-edge"

    # -- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)

    def _headers(self, status: int, kind: Optional[str], length: Optional[int], extra=()) -> None:
        self.send_response(status)
        for name, value in _SECURITY_HEADERS:
            self.send_header(name, value)
        if kind is not None:
            self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, kind: str, extra=()) -> None:
        self._headers(status, kind, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, separators=(",", ":")).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _verdict(self) -> Tuple[int, bool, Dict[str, List[str]]]:
        """(status, token came in the query, query) of this request, by the gate."""
        headers = getattr(self, "headers", None)
        if headers is None:  # the request line itself was bad
            return (401 if self.server.view.gate.token is not None else 200), False, {}
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        verdict = self.server.view.gate.check(headers, query)
        return verdict.status, verdict.via_query, query

    def _gate(self) -> Optional[Dict[str, List[str]]]:
        """The query when the request may proceed; None after answering 401/403."""
        status, via_query, query = self._verdict()
        if status != 200:
            self._refuse(status)
            return None
        self._set_cookie = via_query
        return query

    def _refuse(self, status: int) -> None:
        """A short plain-text answer that says nothing about the page, and the connection closed."""
        self.close_connection = True
        extra = [("Connection", "close")]
        if status == 401:
            extra.append(("WWW-Authenticate", 'Bearer realm="fcn-edge"'))
        text = "403 Forbidden: this page answers to localhost only" if status == 403 else f"{status} {HTTPStatus(status).phrase}"
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8", extra)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """The stdlib's own errors (a bad request line, a method there is no do_* for): behind
        the token like everything else, and without its HTML page echoing the request."""
        status = self._verdict()[0]
        self._refuse(status if status != 200 else code)

    def end_headers(self) -> None:
        if getattr(self, "_set_cookie", False):
            self.send_header("Set-Cookie", self.server.view.gate.set_cookie())
            self._set_cookie = False
        super().end_headers()

    # -- methods ------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        query = self._gate()
        if query is None:
            return
        path = urlsplit(self.path).path
        view = self.server.view
        try:
            if path in view.assets:
                if path == "/" and self._set_cookie:  # drop the token from the address bar
                    self._send(303, b"", "text/plain", (("Location", "/"),))
                    return
                body, kind = view.assets[path]
                self._send(200, body, kind)
            elif path == "/api/streams":
                self._json(200, {"title": view.title, "streams": [s.describe() for s in view.streams]})
            elif path == "/api/stats":
                self._send(200, view.snapshot_json().encode(), "application/json")
            elif path == "/events":
                self._events()
            elif path.startswith("/stream/") and path.endswith(".mjpg"):
                self._mjpeg(path[len("/stream/"):-len(".mjpg")])
            elif path.startswith("/frame/") and path.endswith(".jpg"):
                self._frame(path[len("/frame/"):-len(".jpg")], query)
            else:
                self._error(404, "no such page")
        except (BrokenPipeError, ConnectionResetError, socket.timeout, TimeoutError):
            self.close_connection = True  # the viewer went away or stopped reading

    def do_POST(self) -> None:  # noqa: N802
        if self._gate() is None:
            return
        path = urlsplit(self.path).path
        if not path.startswith("/api/control/"):
            self._error(404, "no such page")
            return
        stream = self.server.view.stream(path[len("/api/control/"):])
        if stream is None:
            self._error(404, "no such stream")
            return
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":  # also keeps plain HTML forms of other sites out
            self.close_connection = True
            self._error(415, "send the control as application/json")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._error(411, "Content-Length required")
            return
        if not 0 < length <= MAX_CONTROL_BYTES:
            self.close_connection = True
            self._error(413, f"a control is at most {MAX_CONTROL_BYTES} bytes")
            return
        try:
            payload = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._error(400, "the body is not JSON")
            return
        try:
            self._json(200, {"settings": stream.control(payload)})
        except MetaError as exc:  # the model cannot do it (e.g. linear filtering without scores)
            self._error(409, str(exc))
        except FcnEdgeError as exc:
            self._error(400, str(exc))

    # -- long-lived responses ----------------------------------------------------------------
    def _stream_or_404(self, name: str) -> Optional[ViewStream]:
        stream = self.server.view.stream(name)
        if stream is None:
            self._error(404, f"no stream named {name!r}")
        return stream

    def _mjpeg(self, name: str) -> None:
        stream = self._stream_or_404(name)
        if stream is None:
            return
        view = self.server.view
        self.close_connection = True
        self._headers(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}", None, (("Connection", "close"),))
        self.wfile.write(PART_HEAD)
        with stream.slot.watching("mjpeg", self.address_string()) as record:
            while not view.closing:
                frame = stream.slot.next_frame(record, _WAIT_S)
                if frame is None:
                    continue
                self.wfile.write(frame.jpeg + b"\r\n" + PART_HEAD)  # the part ends, the next one's headers follow
                stream.slot.sent(record, frame)

    def _frame(self, name: str, query: Dict[str, List[str]]) -> None:
        stream = self._stream_or_404(name)
        if stream is None:
            return
        try:
            after = int(query.get("after", ["0"])[0])
        except ValueError:
            self._error(400, "after must be an integer")
            return
        with stream.slot.watching("frame", self.address_string()) as record:
            frame = stream.slot.next_frame(record, _FRAME_WAIT_S, after)
            if frame is None:
                self._error(503, "no frame yet")
                return
            self._send(200, frame.jpeg, "image/jpeg", (("X-Frame-Number", str(frame.number)),
                                                       ("X-Frame-Index", str(frame.index)),
                                                       ("X-Timestamp", f"{frame.t_capture:.6f}")))
            stream.slot.sent(record, frame)

    def _events(self) -> None:
        view = self.server.view
        self.close_connection = True
        self._headers(200, "text/event-stream; charset=utf-8", None, (("Connection", "close"),))
        self.wfile.write(b"retry: 2000\n\n")
        view._stats_client(+1)
        try:
            number, quiet_since = 0, time.monotonic()
            while not view.closing:
                number, text = view.next_stats(number, _WAIT_S)
                if text is not None:
                    self.wfile.write(f"id: {number}\nevent: stats\ndata: {text}\n\n".encode())
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 15:
                    self.wfile.write(b": keep-alive\n\n")  # proxies close silent connections
                    quiet_since = time.monotonic()
        finally:
            view._stats_client(-1)
