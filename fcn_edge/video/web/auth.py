"""Who may talk to the page.

With a token, every request must carry it: ``Authorization: Bearer TOKEN`` (scripts),
``?token=TOKEN`` (the first load in a browser), or the cookie the server sets after that
first load (so the page's own stream, statistics and control requests carry it without
putting it in more URLs). Anything else gets 401 and no content, whatever the path.

Without a token the page is bound to loopback (see :mod:`.config`), and then only requests
whose Host header names this machine are served: a web page elsewhere cannot point a name
it controls at 127.0.0.1 (DNS rebinding) and read the camera through the browser.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Mapping, Optional, Sequence

COOKIE_PREFIX = "fcn_edge_view_"
_LOCAL_NAMES = ("localhost",)


@dataclass(frozen=True)
class Verdict:
    """``status`` 200 (serve it), 401 (no or wrong token) or 403 (foreign Host);
    ``via_query``: the token came in the URL, so the response sets the cookie."""

    status: int
    via_query: bool = False


class RequestGate:
    def __init__(self, token: Optional[str], port: int):
        self.token = token
        self.cookie_name = f"{COOKIE_PREFIX}{port}"  # cookies ignore ports: one name per page

    def check(self, headers: Mapping[str, str], query: Mapping[str, Sequence[str]]) -> Verdict:
        if self.token is None:
            return Verdict(200) if _local_host(headers.get("Host")) else Verdict(403)
        if self._matches(_bearer(headers.get("Authorization"))):
            return Verdict(200)
        if any(self._matches(value) for value in query.get("token", ())):
            return Verdict(200, via_query=True)
        if self._matches(_cookie(headers.get("Cookie"), self.cookie_name)):
            return Verdict(200)
        return Verdict(401)

    def set_cookie(self) -> str:
        """The Set-Cookie value after a first load with ``?token=``: not readable by scripts,
        never sent by other sites' requests."""
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"

    def _matches(self, candidate: Optional[str]) -> bool:
        if candidate is None or self.token is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.token.encode())


def _bearer(value: Optional[str]) -> Optional[str]:
    if not value:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _cookie(value: Optional[str], name: str) -> Optional[str]:
    if not value:
        return None
    jar = SimpleCookie()
    try:
        jar.load(value)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _local_host(value: Optional[str]) -> bool:
    """The Host header names this machine (any port); no header (HTTP/1.0) is let through."""
    if value is None:
        return True
    host = value.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
