"""``triton://HOST[:PORT]/MODEL[?options]``: a model served by Triton, named like a file.

Every command that takes a model takes this too. gRPC is the default (port 8001); options:

- ``protocol=grpc|http`` (HTTP's default port is 8000);
- ``version=N`` (default: the server's policy, usually the newest);
- ``shm=auto|on|off``: system shared memory for the tensors; auto uses it when the server
  is on this machine (a loopback address) and falls back when the server cannot map it;
- ``retries=N`` (default 5) and ``timeout=S`` (seconds per request, default 30): a server
  that stops answering is retried with backoff, then the run fails with a clear error.

Parsing needs no tritonclient, so the CLI can tell a URI from a file name cheaply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fcn_edge.errors import UsageError

SCHEME = "triton"
PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
SHM_MODES = ("auto", "on", "off")
LOOPBACK = ("localhost", "127.0.0.1", "::1", "ip6-localhost")
_MODEL = re.compile(r"^[A-Za-z0-9_.-]+$")


def is_loopback(host: str) -> bool:
    """True for an address of this machine only (127.0.0.0/8, ::1, localhost)."""
    return host.lower() in LOOPBACK or host.startswith("127.")


def is_triton_uri(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(f"{SCHEME}://")


@dataclass(frozen=True)
class TritonUri:
    host: str
    port: int
    model: str
    protocol: str = "grpc"
    version: str = ""
    shm: str = "auto"
    retries: int = 5
    timeout_s: float = 30.0

    @classmethod
    def parse(cls, text: str) -> "TritonUri":
        """Raise UsageError naming what is wrong: ``triton://HOST:PORT/MODEL`` is the form."""
        form = f"{SCHEME}://HOST[:PORT]/MODEL[?protocol=grpc|http&version=N&shm=auto|on|off&retries=N&timeout=S]"
        if not is_triton_uri(text):
            raise UsageError(f"{text!r} is not a Triton URI: {form}")
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"{text}: the port is not a number: {form}") from None
        host = parts.hostname or ""
        model = parts.path.strip("/")
        if not host or not model or not _MODEL.match(model):
            raise UsageError(f"{text}: needs a host and a model name (letters, digits, '.', '_', '-'): {form}")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - {"protocol", "version", "shm", "retries", "timeout"})
        if unknown:
            raise UsageError(f"{text}: unknown option(s) {', '.join(unknown)}: {form}")
        protocol = options.get("protocol", "grpc").lower()
        if protocol not in PROTOCOLS:
            raise UsageError(f"{text}: protocol={protocol} is not one of {', '.join(PROTOCOLS)}")
        shm = options.get("shm", "auto").lower()
        if shm not in SHM_MODES:
            raise UsageError(f"{text}: shm={shm} is not one of {', '.join(SHM_MODES)}")
        version = options.get("version", "")
        if version and not version.isdigit():
            raise UsageError(f"{text}: version={version} is not a number")
        try:
            retries = int(options.get("retries", cls.retries))
            timeout = float(options.get("timeout", cls.timeout_s))
        except ValueError:
            raise UsageError(f"{text}: retries must be an integer and timeout a number of seconds") from None
        if retries < 0 or not timeout > 0:
            raise UsageError(f"{text}: retries must be >= 0 and timeout > 0")
        return cls(host, port or DEFAULT_PORTS[protocol], model, protocol, version, shm, retries, timeout)

    @property
    def address(self) -> str:
        """HOST:PORT as tritonclient takes it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def local(self) -> bool:
        """The server is on this machine, so system shared memory can carry the tensors."""
        return is_loopback(self.host)

    @property
    def use_shm(self) -> bool:
        return self.shm == "on" or (self.shm == "auto" and self.local)

    def __str__(self) -> str:
        query = [] if self.protocol == "grpc" else [f"protocol={self.protocol}"]
        if self.version:
            query.append(f"version={self.version}")
        return f"{SCHEME}://{self.address}/{self.model}" + (f"?{'&'.join(query)}" if query else "")
