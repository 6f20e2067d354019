"""The benchmark's own error type, in a module of its own so every bench module can raise it."""

from __future__ import annotations

from fcn_edge.errors import FcnEdgeError


class BenchmarkError(FcnEdgeError):
    """A benchmark cannot run as configured."""
