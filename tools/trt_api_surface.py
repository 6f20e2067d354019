#!/usr/bin/env python3
"""Extract the Python API surface of real TensorRT bindings, without TensorRT or a GPU.

The ``tensorrt*-bindings`` wheels on PyPI (about 1 MB each) hold the pybind11 extension
module ``tensorrt.so``. Importing it needs libnvinfer, which cannot be installed without
NVIDIA's libraries, but every class, method, property, argument and enum-value name it
registers is a string literal in the module's read-only data. This tool downloads the wheel
with pip, reads those names (plus the top-level names the package's ``__init__.py`` defines in
Python, such as ``nptype``) and writes one identifier per line to
``tests/data/trt_api_surface/tensorrt-<version>.txt``; tests/test_engine_api_surface.py
checks every TensorRT name that fcn_edge.engine and fcn_edge.runtime use against them.

Which strings are names: a linker *tail-merges* string literals, so ``"INT8"`` may be
stored only as the end of ``"UINT8"`` and ``"Builder"`` as the end of ``"IBuilder"``; reading
the NUL-terminated strings alone either misses such names or, if every tail counts, lets
any short name pass as the tail of a longer one. So this tool reads the strings the code
*points at*: pybind11 receives every name it registers (``m.def("name")``,
``.value("INT8", ...)``, ``py::arg("flag")``) as a pointer into ``.rodata``, loaded with a
RIP-relative ``lea`` or stored in a pointer table (an ``R_X86_64_RELATIVE`` relocation).
Each pointer's target, up to its NUL, is an exact string; those that are identifiers are
the surface, one per line, and a name belongs to it only when it equals a line.

Usage::

    python tools/trt_api_surface.py                     # the default versions
    python tools/trt_api_surface.py --version 10.13.3.9 # one more
    python tools/trt_api_surface.py --wheel path/to/tensorrt_cu12_bindings-....whl
"""

from __future__ import annotations

import argparse
import hashlib
import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Set

REPO = Path(__file__).resolve().parents[1]
SURFACE_DIR = REPO / "tests" / "data" / "trt_api_surface"
WHEEL_CACHE = REPO / ".whl"

# 8.6.1 stands in for JetPack 5/6.0 (8.5.2/8.6.2, whose bindings are not on PyPI);
# 10.3.0 is JetPack 6.1/6.2, 10.13 JetPack 7.0, 10.16 the newest 10.x, 11.4 JetPack 7.2.2.
DEFAULT_VERSIONS = ("8.6.1", "10.3.0", "10.13.3.9", "10.16.1.11", "11.4.0.106")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64")
PYTHON_VERSION = "3.11"

# Itanium type names such as N8nvinfer111ICudaEngineE or St6vectorIiSaIiEE.
_MANGLED = re.compile(r"\d(nvinfer|nvonnxparser|pybind|tensorrt|__)|St\d|^(PF|FN|FS|PK|N)\d|^(PF|F)v?R?N\d")
MAX_NAME_LENGTH = 60  # the longest Python name in the bindings has 43 characters
# Names every supported release registers, several only as the tail of a longer literal
# ("Builder" of "IBuilder"): an extraction that misses one has lost track of the bindings.
EXPECTED = ("Builder", "Runtime", "Logger", "INT8", "create_builder_config", "deserialize_cuda_engine",
            "execute_async_v3", "set_input_shape", "set_tensor_address", "serialize")


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


@dataclass(frozen=True)
class _Section:
    name: str
    flags: int
    address: int
    offset: int
    size: int

    def holds(self, address: int) -> bool:
        return self.address <= address < self.address + self.size


_SHF_EXECINSTR = 0x4
_EM_X86_64 = 62
_R_X86_64_RELATIVE = 8
# lea r64, [rip + disp32]: REX.W (0x48; 0x4c for r8-r15), opcode 0x8d, ModRM mod 00 r/m 101.
_LEA_RIP = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _sections(elf: bytes, source: str) -> List[_Section]:
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise SystemExit(f"{source}: not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", elf, 0x12)
    if machine != _EM_X86_64:
        raise SystemExit(f"{source}: ELF machine {machine}, not x86-64 (the instruction decoding is x86-64's)")
    (table,) = struct.unpack_from("<Q", elf, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)
    raw = [struct.unpack_from("<IIQQQQ", elf, table + i * entry_size) for i in range(count)]
    names_offset = raw[names_index][4]

    def name_at(offset: int) -> str:
        start = names_offset + offset
        return elf[start:elf.index(b"\0", start)].decode("ascii", "replace")

    return [_Section(name_at(n), flags, address, offset, size) for n, _kind, flags, address, offset, size in raw]


def referenced_strings(elf: bytes, source: str = "tensorrt.so") -> Set[bytes]:
    """Every NUL-terminated string in ``.rodata`` that code or a pointer table points at."""
    sections = _sections(elf, source)
    strings = [s for s in sections if s.name.startswith(".rodata")]
    code = [s for s in sections if s.flags & _SHF_EXECINSTR]
    if not strings or not code:
        raise SystemExit(f"{source}: no .rodata or no code section")
    targets: Set[int] = set()
    for section in code:
        blob = elf[section.offset:section.offset + section.size]
        for match in _LEA_RIP.finditer(blob):
            (displacement,) = struct.unpack_from("<i", blob, match.end())
            targets.add(section.address + match.end() + 4 + displacement)  # rip: the next instruction
    for section in sections:
        if section.name.startswith(".rela"):
            for i in range(section.size // 24):
                _where, info, addend = struct.unpack_from("<QQq", elf, section.offset + i * 24)
                if info & 0xFFFFFFFF == _R_X86_64_RELATIVE:
                    targets.add(addend)
    found: Set[bytes] = set()
    for target in targets:
        holder = next((s for s in strings if s.holds(target)), None)
        if holder is None:
            continue
        start = holder.offset + target - holder.address
        end = elf.find(b"\0", start, holder.offset + holder.size)
        if end > start:
            found.add(elf[start:end])
    return found


def identifiers_from_references(elf: bytes, source: str = "tensorrt.so") -> Set[str]:
    """The referenced strings that are Python identifiers (mangled C++ type names dropped)."""
    names: Set[str] = set()
    for raw in referenced_strings(elf, source):
        name = raw.decode("ascii", "replace")
        if _IDENTIFIER.match(name) and not name.startswith("_Z") and len(name) <= MAX_NAME_LENGTH \
                and not _MANGLED.search(name):
            names.add(name)
    return names


def write_surface(version: str, names: Set[str], wheel: Path, digest: str) -> Path:
    SURFACE_DIR.mkdir(parents=True, exist_ok=True)
    path = SURFACE_DIR / f"tensorrt-{version}.txt"
    header = [
        f"# TensorRT {version} Python API surface: the identifiers the bindings' tensorrt.so points at.",
        f"# Source: {wheel.name} (sha256 {digest}); written by tools/trt_api_surface.py.",
        "# A name is in the surface only if it equals a line.",
    ]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(header + sorted(names)) + "\n")
    tmp.replace(path)
    return path


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
        names = identifiers_from_references(blob, wheel.name) | python_module_names(wheel)
        lost = [n for n in EXPECTED if n not in names]
        if lost:
            raise SystemExit(f"{wheel.name}: {lost} not found: the extraction lost track of the bindings")
        path = write_surface(version, names, wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
        probes = ("STRONGLY_TYPED", "FP16", "IInt8EntropyCalibrator2", "builder_optimization_level")
        marks = " ".join(f"{p}={'yes' if p in names else 'no'}" for p in probes)
        print(f"{version}: {len(names)} identifiers -> {path.relative_to(REPO)}  ({marks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
