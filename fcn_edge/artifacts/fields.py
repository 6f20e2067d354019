"""Typed reading of JSON objects that come from files: every field checked, every error named.

ModelMeta (in an ONNX, a checkpoint or a sidecar) and the engine record arrive from disk, where
anything can happen: a hand-edited sidecar, a truncated copy, a newer or older writer. Each
field is read by type and range here, and anything else becomes one :class:`MetaError` that
names the file and the field ("model.engine.json: engine.compute_capability must be a string
like '8.7', got 87"), never a TypeError three calls later.
"""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from fcn_edge.errors import MetaError

_MISSING: Any = object()


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FieldReader:
    """Reads the fields of one JSON object; ``source`` names the file, ``section`` the object."""

    def __init__(self, data: Any, source: str, section: str = ""):
        self.source = source
        self.section = section
        if not isinstance(data, Mapping):
            where = f"{section} " if section else ""
            raise MetaError(f"{source}: {where}must be a JSON object, got {type(data).__name__}")
        self.data = data

    # -- errors ----------------------------------------------------------------------------
    def name(self, key: str) -> str:
        return f"{self.section}.{key}" if self.section else key

    def error(self, key: str, what: str, value: Any = _MISSING) -> MetaError:
        got = "" if value is _MISSING else f", got {_show(value)}"
        return MetaError(f"{self.source}: {self.name(key)} must be {what}{got}")

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise MetaError(f"{self.source}: {self.name(key)} is missing")
        return default

    # -- scalars ---------------------------------------------------------------------------
    def text(self, key: str, default: Any = _MISSING, nonempty: bool = False) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or (nonempty and not value.strip()):
            raise self.error(key, "a non-empty string" if nonempty else "a string", value)
        return value

    def choice(self, key: str, allowed: Sequence[str], default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if value not in allowed:
            raise self.error(key, f"one of {', '.join(map(repr, allowed))}", value)
        return value

    def integer(self, key: str, default: Any = _MISSING, low: Optional[int] = None,
                high: Optional[int] = None, optional: bool = False) -> Optional[int]:
        value = self._get(key, default)
        if value is None and optional:
            return None
        return self.check_int(key, value, low, high)

    def check_int(self, key: str, value: Any, low: Optional[int] = None, high: Optional[int] = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "an integer", value)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}" if low is not None else f"<= {high}"
            raise self.error(key, f"an integer {bounds}", value)
        return value

    def number(self, key: str, default: Any = _MISSING, low: Optional[float] = None,
               positive: bool = False) -> float:
        value = self._get(key, default)
        return self.check_number(key, value, low, positive)

    def check_number(self, key: str, value: Any, low: Optional[float] = None, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(key, "a finite number", value)
        if positive and value <= 0:
            raise self.error(key, "a number > 0", value)
        if low is not None and value < low:
            raise self.error(key, f"a number >= {low}", value)
        return float(value)

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value

    # -- lists -----------------------------------------------------------------------------
    def items(self, key: str, default: Any = _MISSING) -> List[Any]:
        value = self._get(key, default)
        if not isinstance(value, (list, tuple)):
            raise self.error(key, "a list", value)
        return list(value)

    def text_list(self, key: str, default: Any = _MISSING, nonempty: bool = False) -> Tuple[str, ...]:
        values = self.items(key, default)
        if nonempty and not values:
            raise self.error(key, "a non-empty list of strings", values)
        for value in values:
            if not isinstance(value, str):
                raise self.error(key, "a list of strings", values)
        return tuple(values)

    def int_tuple(self, key: str, default: Any = _MISSING, length: Optional[int] = None, low: int = 1,
                  optional: bool = False) -> Optional[Tuple[int, ...]]:
        value = self._get(key, default)
        if value is None and optional:
            return None
        what = f"a list of {length} integers >= {low}" if length else f"a list of integers >= {low}"
        if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length) or not value:
            raise self.error(key, what, value)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in value):
            raise self.error(key, what, value)
        return tuple(value)

    def number_tuple(self, key: str, length: int, default: Any = _MISSING, positive: bool = False) -> Tuple[float, ...]:
        value = self._get(key, default)
        what = f"a list of {length} {'positive ' if positive else ''}finite numbers"
        if not isinstance(value, (list, tuple)) or len(value) != length:
            raise self.error(key, what, value)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
                raise self.error(key, what, value)
        return tuple(float(v) for v in value)

    def palette(self, key: str, default: Any = _MISSING) -> Tuple[Tuple[int, int, int], ...]:
        colours = self.items(key, default)
        what = "a list of [R, G, B] colours with values 0..255"
        for colour in colours:
            if (not isinstance(colour, (list, tuple)) or len(colour) != 3
                    or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255 for c in colour)):
                raise self.error(key, what, colour)
        return tuple(tuple(c) for c in colours)  # type: ignore[misc]

    def objects(self, key: str, default: Any = _MISSING) -> List["FieldReader"]:
        """A list of JSON objects, each as a reader whose errors name ``key[i]``."""
        return [FieldReader(item, self.source, f"{self.name(key)}[{i}]") for i, item in enumerate(self.items(key, default))]
