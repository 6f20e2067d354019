"""Where the page is served, and who may see it: ``--view [HOST]:PORT``, ``-o http://HOST:PORT/``
and ``--view-token``.

Safe by default: without a host the page binds 127.0.0.1, and a page bound to any other
address is refused unless a token protects it. The page shows the camera and changes the
running pipeline, so an unprotected one on a robot's network is a hole; a warning would
scroll past in a service's log, a refusal costs one flag (or the ``FCN_EDGE_VIEW_TOKEN``
environment variable, which keeps the token out of ``ps``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit

from fcn_edge.errors import UsageError

if TYPE_CHECKING:
    from fcn_edge.video.uri import SinkSpec

DEFAULT_HOST = "127.0.0.1"
TOKEN_ENV = "FCN_EDGE_VIEW_TOKEN"
# URL-safe, so a token travels unchanged in a query, a cookie and a header.
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{8,256}$")
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/]*)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class ViewAddress:
    """A host (an IP literal or a name) and a port; port 0 lets the system choose one."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"view port {self.port} is outside 0..65535")
        if not self.host:
            raise UsageError("empty view host")

    @property
    def is_loopback(self) -> bool:
        """Only this machine can connect. Names other than localhost count as not loopback:
        what they resolve to can change."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def url(self, port: Optional[int] = None) -> str:
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"http://{host}:{self.port if port is None else port}/"


def parse_view_address(text: str) -> ViewAddress:
    """``:8080``, ``0.0.0.0:8080``, ``[::1]:8080``, ``jetson.local:8080`` or ``http://HOST:PORT/``;
    no host: 127.0.0.1."""
    raw = str(text).strip()
    if raw.lower().startswith(("http://", "https://")):
        return _from_url(raw)
    match = _HOST_PORT.match(raw)
    if match is None:
        raise UsageError(f"view address {raw!r} is not [HOST]:PORT (e.g. :8080 or 0.0.0.0:8080)")
    host = match.group("v6") or match.group("host") or DEFAULT_HOST
    if match.group("v6"):
        _check_ip(host, raw)
    return ViewAddress(host, int(match.group("port")))


def _from_url(raw: str) -> ViewAddress:
    parts = urlsplit(raw)
    if parts.scheme.lower() != "http":
        raise UsageError(f"{raw!r}: the page is served over plain http:// (put a TLS proxy in front for https)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"{raw!r}: the page is served at the root; give http://HOST:PORT/ without a path")
    if parts.username or parts.password:
        raise UsageError(f"{raw!r}: no user or password in the URL; protect the page with --view-token")
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{raw!r}: {exc}") from None
    if port is None:
        raise UsageError(f"{raw!r}: give the port, e.g. http://0.0.0.0:8080/")
    host = parts.hostname or DEFAULT_HOST
    if parts.netloc.startswith("["):
        _check_ip(host, raw)
    return ViewAddress(host, port)


def _check_ip(host: str, raw: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"{raw!r}: {host!r} is not an IPv6 address") from None


def check_token(token: str) -> str:
    if not _TOKEN.match(token):
        raise UsageError("the view token must be 8 to 256 characters of A-Z a-z 0-9 . _ ~ - "
                         "(it travels in URLs and cookies); e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())'")
    return token


def token_from_environment(given: Optional[str]) -> Optional[str]:
    """``--view-token`` if given, else ``$FCN_EDGE_VIEW_TOKEN`` if set, else None."""
    if given:
        return given
    return os.environ.get(TOKEN_ENV) or None


@dataclass(frozen=True)
class ViewConfig:
    """The page: where it binds (None: no page), its token (None: none), the JPEG quality
    of the stream, how often statistics are pushed, and how long a viewer that reads
    nothing may hold a connection before it is cut."""

    address: Optional[ViewAddress] = None
    token: Optional[str] = None
    jpeg_quality: int = 80
    stats_interval_s: float = 0.5
    send_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.token is not None:
            check_token(self.token)
        elif self.address is not None and not self.address.is_loopback:
            raise UsageError(
                f"the page on {self.address.host}:{self.address.port} would show the camera and its controls to "
                f"every machine that reaches it: give --view-token TOKEN (or set {TOKEN_ENV}), or bind "
                "127.0.0.1 (e.g. --view :8080) and reach it through an SSH tunnel"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"JPEG quality {self.jpeg_quality} is outside 1..100")
        if self.stats_interval_s <= 0 or self.send_timeout_s <= 0:
            raise UsageError("the statistics interval and the send timeout must be positive")


def page_config(sink: "SinkSpec", view: ViewConfig) -> Optional[ViewConfig]:
    """The page a run serves: at the output's address when the output is http://HOST:PORT/,
    else at ``view.address``; None when neither asks for one."""
    if sink.kind != "page":
        return view if view.address is not None else None
    address = parse_view_address(sink.location)
    if view.address is not None and view.address != address:
        raise UsageError(f"one page per run: the output {sink.uri} and --view "
                         f"{view.address.host}:{view.address.port} name two addresses")
    return replace(view, address=address)
