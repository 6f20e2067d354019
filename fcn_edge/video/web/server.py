"""The page's HTTP server: the stdlib's ThreadingHTTPServer, one thread per connection
(the requests themselves are answered in :mod:`.handler`).

Routes (every one behind the token when there is one, see :mod:`.auth`)::

    GET  /  /app.js  /style.css        the page (package data, served by name only)
    GET  /api/streams                  the streams: names, models, classes and colours
    GET  /api/stats                    one statistics snapshot of every stream (JSON)
    GET  /events                       the same, pushed as Server-Sent Events ("stats")
    GET  /stream/NAME.mjpg             the stream as MJPEG (multipart/x-mixed-replace)
    GET  /frame/NAME.jpg[?after=N]     one JPEG newer than encode number N
    POST /api/control/NAME             a JSON control (see :mod:`.control`)

Nothing reads a file named by a request: the page's three assets are read from the
package once, at start, and looked up by exact path.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import UsageError, VideoError
from fcn_edge.video.live import LiveControls
from fcn_edge.video.web.auth import RequestGate
from fcn_edge.video.web.broadcast import FrameSlot
from fcn_edge.video.web.config import ViewConfig
from fcn_edge.video.web.handler import PageHandler
from fcn_edge.video.web.streams import ViewStream, snapshot_all

log = logging.getLogger(__name__)

ASSETS = {  # request path -> (package file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAX_CONNECTIONS = 64  # each is a thread; a device serves a few viewers, not a crowd


def load_assets() -> Dict[str, Tuple[bytes, str]]:
    package = resources.files(__package__).joinpath("assets")
    return {path: (package.joinpath(name).read_bytes(), kind) for path, (name, kind) in ASSETS.items()}


class ViewServer:
    """Serves the page for any number of named streams; ``start()`` binds and serves on a
    thread of its own, ``close()`` ends every connection. A context manager."""

    def __init__(self, config: ViewConfig, title: str = "fcn-edge"):
        if config.address is None:
            raise UsageError("the page needs an address to bind, e.g. ViewAddress('127.0.0.1', 8080)")
        self.config = config
        self.title = title
        self.assets = load_assets()
        self.gate = RequestGate(config.token, config.address.port)
        self._streams: Dict[str, ViewStream] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._stats_cond = threading.Condition()
        self._stats_number = 0
        self._stats_json = ""
        self._stats_clients = 0
        self._connections: Set[socket.socket] = set()
        self._httpd: Optional[_HttpServer] = None
        self._threads: List[threading.Thread] = []

    # -- streams ----------------------------------------------------------------------------
    def add_stream(self, name: str, meta: ModelMeta, label: str = "", controls: Optional[LiveControls] = None,
                   stats: Optional[Callable[[], Dict[str, Any]]] = None) -> ViewStream:
        with self._lock:
            if name in self._streams:
                raise UsageError(f"the page already has a stream named {name!r}")
            stream = ViewStream(name, meta, FrameSlot(name, self.config.jpeg_quality), label, controls, stats)
            self._streams[name] = stream
            return stream

    @property
    def streams(self) -> List[ViewStream]:
        with self._lock:
            return list(self._streams.values())

    def stream(self, name: str) -> Optional[ViewStream]:
        with self._lock:
            return self._streams.get(name)

    # -- lifetime -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else self.config.address.port

    @property
    def url(self) -> str:
        """The page's address (the port the system chose for port 0)."""
        return self.config.address.url(self.port)

    def start(self) -> "ViewServer":
        address = self.config.address
        try:
            self._httpd = _HttpServer(self, (address.host, address.port))
        except OSError as exc:
            raise VideoError(f"cannot serve the page on {address.host}:{address.port}: {exc.strerror or exc} "
                             "(another program on that port? choose another with --view HOST:PORT)") from None
        if address.port == 0:
            self.gate = RequestGate(self.config.token, self.port)  # the cookie is named after the real port
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="fcn-edge-page", daemon=True),
            threading.Thread(target=self._stats_loop, name="fcn-edge-page-stats", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.debug("serving the page on %s", self.url)
        return self

    def close(self) -> None:
        """Stop serving: end streams and event connections, unblock stalled sends, close the socket."""
        if self._closing.is_set():
            return
        self._closing.set()
        with self._stats_cond:
            self._stats_cond.notify_all()
        for stream in self.streams:
            stream.slot.close()
            view = stream.slot.stats()
            if view["frames_encoded"]:
                log.info("page stream %s: %d of %d frames encoded for viewers (lately %.1f ms each)", stream.name,
                         view["frames_encoded"], view["frames_published"], view["encode_ms"] or 0.0)
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._lock:
                connections = list(self._connections)
            for connection in connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(5.0)

    def __enter__(self) -> "ViewServer":
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    # -- connections (the handler threads) -------------------------------------------------
    def _track(self, connection: socket.socket, open_: bool) -> bool:
        """Count a connection in or out; False when one more would pass MAX_CONNECTIONS."""
        with self._lock:
            if not open_:
                self._connections.discard(connection)
                return True
            if len(self._connections) >= MAX_CONNECTIONS:
                return False
            self._connections.add(connection)
            return True

    # -- statistics: computed once per interval for every event connection ---------------
    def snapshot_json(self) -> str:
        return json.dumps(snapshot_all(self.streams), separators=(",", ":"))

    def _stats_loop(self) -> None:
        while not self._closing.wait(self.config.stats_interval_s):
            with self._stats_cond:
                if not self._stats_clients:
                    continue
            text = self.snapshot_json()
            with self._stats_cond:
                self._stats_number += 1
                self._stats_json = text
                self._stats_cond.notify_all()

    def next_stats(self, after: int, timeout: float) -> Tuple[int, Optional[str]]:
        with self._stats_cond:
            if self._stats_number <= after and not self._closing.is_set():
                self._stats_cond.wait(timeout)
            if self._stats_number > after:
                return self._stats_number, self._stats_json
            return after, None

    def _stats_client(self, delta: int) -> None:
        with self._stats_cond:
            self._stats_clients += delta


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() ends connections itself; stalled ones must not hold it up

    def __init__(self, view: ViewServer, address: Tuple[str, int]):
        self.view = view
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, PageHandler)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up (getfqdn), which can take seconds without DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        # socketserver prints a traceback to stderr; a viewer that went away is no error
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
        else:
            log.exception("the page's request from %s failed", client_address)

    def process_request(self, request, client_address) -> None:
        if not self.view._track(request, True):
            log.warning("the page refused a connection from %s: %d already open", client_address[0], MAX_CONNECTIONS)
            self.shutdown_request(request)
            return
        request.settimeout(self.view.config.send_timeout_s)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a frame's last bytes leave at once
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # socketserver calls it once per connection, whatever happened
        self.view._track(request, False)
        super().shutdown_request(request)
