"""Collect the CUDA names fcn-edge's code uses, from its AST, to check them against cuda-python.

Two kinds of CUDA access exist, each behind one helper:

- the CUDA runtime API of cuda-python: the module returned by ``_cudart()`` (or bound by
  ``from cuda.bindings import runtime as cudart``), held as ``cudart`` or ``self._cudart``;
  every attribute chain read from it (``cudart.cudaMemcpyKind.cudaMemcpyHostToDevice``)
  must resolve in the installed ``cuda.bindings.runtime``;
- libcuda through ctypes: the library returned by ``_libcuda()`` or ``self._load()``, held as
  ``lib`` or ``self._lib``; every symbol read from it (``self._lib.cuMemAlloc_v2``) must be
  a driver entry point cuda-bindings itself loads (``cuda/bindings/_internal/driver.pxd``
  declares each under its ABI name: ``_cuMemAlloc_v2``). ``_libcudart()`` symbols are CUDA
  runtime functions, checked like the runtime API.

``getattr(x, "NAME", None)`` is a probe (a symbol older drivers lack) and is not required.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("fcn_edge/runtime/cuda_python_buffers.py", "fcn_edge/runtime/cuda_buffers.py",
           "fcn_edge/engine/cuda_driver.py", "fcn_edge/doctor")
# root helper -> which API its value is; a ctypes library's names are its symbols only (what
# follows, .restype/.argtypes, is Python's)
ROOT_CALLS = {"_cudart": "runtime", "_libcudart": "runtime ctypes", "_libcuda": "libcuda ctypes",
              "_load": "libcuda ctypes"}
ROOT_ATTRS = {"_cudart": "runtime", "_lib": "libcuda ctypes"}
ROOT_IMPORTS = {"cuda.bindings.runtime": "runtime", "cuda.cudart": "runtime"}


@dataclass(frozen=True)
class CudaName:
    api: str  # "runtime" or "libcuda"
    chain: Tuple[str, ...]  # attribute chain read from the module or library
    where: str

    @property
    def dotted(self) -> str:
        return ".".join(self.chain)


def _root_of_call(node: ast.Call) -> Optional[str]:
    func = node.func
    if isinstance(func, ast.Name):
        return ROOT_CALLS.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return ROOT_CALLS.get(func.attr)
    return None


class _Collector(ast.NodeVisitor):
    def __init__(self, rel: str):
        self.rel = rel
        self.names: Dict[str, str] = {}  # local name -> api (whole-file, by assignment)
        self.found: List[CudaName] = []

    def root(self, node: ast.AST) -> Optional[str]:
        if isinstance(node, ast.Call):
            return _root_of_call(node)
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return ROOT_ATTRS.get(node.attr)
        return None

    def bind(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                api = self.root(node.value)
                if api:
                    self.names[node.targets[0].id] = api
            elif isinstance(node, ast.ImportFrom) and node.module in ("cuda.bindings", "cuda"):
                for alias in node.names:
                    api = ROOT_IMPORTS.get(f"{node.module}.{alias.name}")
                    if api:
                        self.names[alias.asname or alias.name] = api

    def collect(self, tree: ast.AST) -> None:
        parents: Dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            parent = parents.get(id(node))
            if isinstance(parent, ast.Attribute) and parent.value is node:
                continue  # only the outermost attribute of a chain
            chain: List[str] = []
            inner: ast.AST = node
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            chain.reverse()
            # self._cudart.x: the root is the attribute itself, the chain what follows it
            api = self.root(inner)
            if api is None and isinstance(inner, ast.Name) and inner.id == "self" and chain and chain[0] in ROOT_ATTRS:
                api, chain = ROOT_ATTRS[chain[0]], chain[1:]
            if api and chain:
                api, _, ctypes_library = api.partition(" ")
                self.found.append(CudaName(api, tuple(chain[:1] if ctypes_library else chain),
                                           f"{self.rel}:{node.lineno}"))


def scanned_files(root: Path = REPO) -> List[Path]:
    files: List[Path] = []
    for entry in SCANNED:
        path = root / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else ([path] if path.is_file() else [])
    return files


def collect_cuda_names(files: Optional[List[Path]] = None, root: Path = REPO) -> List[CudaName]:
    found: List[CudaName] = []
    for path in files if files is not None else scanned_files(root):
        tree = ast.parse(path.read_text())
        collector = _Collector(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
        collector.bind(tree)
        collector.collect(tree)
        found += collector.found
    return found


def libcuda_symbols(driver_pxd: Path) -> Set[str]:
    """The libcuda entry points cuda-bindings loads, by ABI name (``cuMemAlloc_v2``)."""
    import re

    return set(re.findall(r"\bcdef\s+\w+\s+_(cu\w+)\s*\(", driver_pxd.read_text()))
