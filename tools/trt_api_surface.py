#!/usr/bin/env python3
"""Extract the Python API surface of real TensorRT bindings, without TensorRT or a GPU.

The ``tensorrt*-bindings`` wheels on PyPI (about 1 MB each) hold the pybind11 extension
module ``tensorrt.so``. Importing it needs libnvinfer, which cannot be installed without
NVIDIA's libraries, but every class, method, property and enum-value name it registers is a
NUL-terminated string in the module's read-only data. This tool downloads the wheel with
pip, reads those strings (plus the top-level names the package's ``__init__.py`` defines in
Python, such as ``nptype``) and writes one identifier per line to
``tests/data/trt_api_surface/tensorrt-<version>.txt``; tests/test_engine_api_surface.py
checks every TensorRT name that fcn_edge.engine and fcn_edge.runtime use against them.

What is kept from each NUL-terminated string: the string itself when it is one identifier
(``create_builder_config``), or its trailing identifier when it is a qualified C++ or Python
name (``nvinfer1::DataType`` -> ``DataType``). Docstrings and binary noise are dropped.
Linkers *tail-merge* strings: the literal ``"INT8"`` can be stored only as the end of
``"UINT8"``, and ``"flag"`` inside ``"set_flag"``. A name therefore belongs to the surface
when it equals a listed identifier or is a suffix of one; :func:`in_surface` is that rule,
and the test uses it.

Usage::

    python tools/trt_api_surface.py                     # the default versions
    python tools/trt_api_surface.py --version 10.13.3.9 # one more
    python tools/trt_api_surface.py --wheel path/to/tensorrt_cu12_bindings-....whl
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterable, List, Optional, Set

REPO = Path(__file__).resolve().parents[1]
SURFACE_DIR = REPO / "tests" / "data" / "trt_api_surface"
WHEEL_CACHE = REPO / ".whl"

# 8.6.1 stands in for JetPack 5/6.0 (8.5.2/8.6.2, whose bindings are not on PyPI);
# 10.3.0 is JetPack 6.1/6.2, 10.13 JetPack 7.0, 10.16 the newest 10.x, 11.4 JetPack 7.2.2.
DEFAULT_VERSIONS = ("8.6.1", "10.3.0", "10.13.3.9", "10.16.1.11", "11.4.0.106")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64")
PYTHON_VERSION = "3.11"

_TRAILING_IDENTIFIER = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)\Z")
_QUALIFIERS = (b"::", b".")
# Itanium type names such as N8nvinfer111ICudaEngineE or St6vectorIiSaIiEE.
_MANGLED = re.compile(r"\d(nvinfer|nvonnxparser|pybind|tensorrt|__)|St\d|^(PF|FN|FS|PK|N)\d|^(PF|F)v?R?N\d")
MAX_NAME_LENGTH = 60  # the longest Python name in the bindings has 43 characters


def distribution_for(version: str) -> str:
    """The PyPI distribution that ships the bindings of TensorRT ``version``."""
    major = int(version.split(".")[0])
    if major <= 8:
        return "tensorrt-bindings"  # 8.6.1 is the only 8.x release there
    if major == 10:
        return "tensorrt-cu12-bindings"
    return "tensorrt-cu13-bindings"


def download_wheel(version: str, dest: Path) -> Path:
    """``pip download`` the bindings wheel of ``version`` (no dependencies) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    dist = distribution_for(version)
    pattern = dist.replace("-", "_") + f"-{version}-"
    found = [p for p in dest.glob("*.whl") if p.name.startswith(pattern)]
    if found:
        return found[0]
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", PYTHON_VERSION, "-d", str(dest), f"{dist}=={version}",
    ]
    for platform in PLATFORMS:
        command[command.index("-d"):command.index("-d")] = ["--platform", platform]
    subprocess.run(command, check=True)
    found = [p for p in dest.glob("*.whl") if p.name.startswith(pattern)]
    if not found:
        raise SystemExit(f"pip downloaded no wheel matching {pattern}* into {dest}")
    return found[0]


def extension_bytes(wheel: Path) -> bytes:
    """The bytes of the ``tensorrt`` extension module inside a bindings wheel."""
    with zipfile.ZipFile(wheel) as archive:
        members = [
            n for n in archive.namelist()
            if re.search(r"(^|/)tensorrt(\.cpython-[^/]*)?\.so$", n)
        ]
        if len(members) != 1:
            raise SystemExit(f"{wheel}: expected one tensorrt*.so extension, found {members}")
        return archive.read(members[0])


def python_module_names(wheel: Path) -> Set[str]:
    """Top-level names that the bindings' ``__init__.py`` defines in Python (nptype, volume,
    __version__): they live in no string of the extension."""
    import ast

    names: Set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if not re.search(r"^tensorrt[^/]*/__init__\.py$", member):
                continue
            tree = ast.parse(archive.read(member).decode("utf-8"))
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Assign):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def identifiers_from_strings(blob: bytes) -> Set[str]:
    """Identifiers stored as NUL-terminated strings (whole, or after a C++/Python qualifier)."""
    names: Set[str] = set()
    for piece in blob.split(b"\0"):
        match = _TRAILING_IDENTIFIER.search(piece)
        if not match:
            continue
        start, name = match.start(), match.group(1).decode("ascii")
        if name.startswith("_Z") or len(name) > MAX_NAME_LENGTH or _MANGLED.search(name):
            continue  # mangled C++ symbols and type names, not Python names
        if start == 0 or any(piece[:start].endswith(q) for q in _QUALIFIERS):
            names.add(name)
    return names


def in_surface(name: str, surface: Iterable[str]) -> bool:
    """True when ``name`` is listed or is the tail of a listed identifier (tail-merging)."""
    return any(entry.endswith(name) for entry in surface)


def write_surface(version: str, names: Set[str], wheel: Path, digest: str) -> Path:
    SURFACE_DIR.mkdir(parents=True, exist_ok=True)
    path = SURFACE_DIR / f"tensorrt-{version}.txt"
    header = [
        f"# TensorRT {version} Python API surface: identifiers in the bindings' tensorrt.so strings.",
        f"# Source: {wheel.name} (sha256 {digest}); written by tools/trt_api_surface.py.",
        "# A name is in the surface if it equals a line or is a suffix of one (linker tail-merging).",
    ]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(header + sorted(names)) + "\n")
    tmp.replace(path)
    return path


def load_surface(path: Path) -> List[str]:
    return [
        line.strip() for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="append", dest="versions",
                        help=f"TensorRT version(s) to extract (default: {' '.join(DEFAULT_VERSIONS)})")
    parser.add_argument("--wheel", action="append", type=Path, default=[],
                        help="use this downloaded bindings wheel instead of pip download")
    parser.add_argument("--cache", type=Path, default=WHEEL_CACHE, help="where wheels are kept")
    args = parser.parse_args(argv)

    wheels = list(args.wheel)
    if not wheels:
        for version in args.versions or DEFAULT_VERSIONS:
            wheels.append(download_wheel(version, args.cache))
    for wheel in wheels:
        version = wheel.name.split("-")[1]
        blob = extension_bytes(wheel)
        names = identifiers_from_strings(blob) | python_module_names(wheel)
        path = write_surface(version, names, wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
        probes = ("STRONGLY_TYPED", "FP16", "IInt8EntropyCalibrator2", "builder_optimization_level")
        marks = " ".join(f"{p}={'yes' if in_surface(p, names) else 'no'}" for p in probes)
        print(f"{version}: {len(names)} identifiers -> {path.relative_to(REPO)}  ({marks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
