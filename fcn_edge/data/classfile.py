"""``classes.txt``: the class list of a user dataset, one class per line.

A line is ``name`` or ``name R G B`` (the class colour, 0..255). Blank lines and lines
starting with ``#`` are skipped. Classes without a colour get the VOC-style default
palette. The synthetic dataset writes one, so its VOC-format folder is self-describing.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

from fcn_edge.atomic import write_text_atomic
from fcn_edge.classes import default_palette
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

CLASS_FILE = "classes.txt"
RGB = Tuple[int, int, int]


def read_class_file(path: PathLike) -> Tuple[Tuple[str, ...], Tuple[RGB, ...]]:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the class list: {exc}") from exc
    names: List[str] = []
    colours: List[object] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
            colour = tuple(int(p) for p in parts[1:])
            if max(colour) > 255:
                raise DataError(f"{path}:{number}: colour {colour} has a channel above 255")
            names.append(parts[0])
            colours.append(colour)
        else:
            names.append(line)
            colours.append(None)
    if not names:
        raise DataError(f"{path}: the class list is empty")
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path}: class names repeat: {duplicates}")
    defaults = default_palette(len(names))
    palette = tuple(c if c is not None else defaults[i] for i, c in enumerate(colours))
    return tuple(names), palette  # type: ignore[return-value]


def write_class_file(path: PathLike, names: Sequence[str], palette: Sequence[RGB]) -> Path:
    path = Path(path)
    body = "".join(f"{name} {r} {g} {b}\n" for name, (r, g, b) in zip(names, palette))
    return write_text_atomic(path, "# class name and RGB colour, one per line; the line number - 1 is the index\n" + body)
