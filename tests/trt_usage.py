"""Collect every TensorRT name that fcn_edge.engine and fcn_edge.runtime use, from their AST.

The conventions the collector relies on (follow them in any module that touches TensorRT):

1. **The module.** A name bound by ``import tensorrt [as trt]``, ``trt = require("tensorrt", ...)``,
   ``trt = load_tensorrt()``, or a function parameter named ``trt``, is the tensorrt module.
2. **Its objects.** A value computed from a TensorRT value (attribute, call, subscript,
   iteration, ``with ... as``, unpacking; also ``self.x = <TensorRT value>`` for every method
   of that class) is a TensorRT value. So is a parameter, variable or function return whose
   annotation mentions ``trt.`` (write it as a string: ``engine: "trt.ICudaEngine"``,
   ``-> "Tuple[trt.Runtime, trt.ICudaEngine]"``, with ``if TYPE_CHECKING: import tensorrt
   as trt`` at the top for linters); calls to such a function return one.
3. **Used names.** Every attribute read or written on a TensorRT value is a used name, as is
   the constant name in ``getattr(x, "NAME")``. ``hasattr(x, "NAME")`` and
   ``getattr(x, "NAME", default)`` are *probes*: their NAME may be missing (that is why
   one probes), but the names in ``x`` are used. Dunder names are ignored.
4. **Version-gated code.** A comment ``# trt-versions: SPEC`` (SPEC like ``<11``, ``>=10``,
   ``>=8.6,<11``) on the first line of an ``if``/``elif`` gates that branch's body; on an
   ``else:`` line, the else body; on a ``def``/``class`` line, the whole definition; on any
   other statement's first line, that statement. Gates nest (they intersect). Names in gated
   code must exist only in the surfaces of the versions the SPEC admits. When the gate is
   ``if caps.<capability>:`` the test also checks the SPEC against that capability's witness
   name (fcn_edge.engine.capabilities.WITNESS) in every surface.
5. **Subclasses of TensorRT classes** (a logger, a calibrator): the methods they define
   override TensorRT's, so their names are used names; attributes they set on ``self`` are
   our own and are not looked up in TensorRT.
6. **Dynamic names.** ``getattr``/``hasattr``/``setattr`` on a TensorRT value with a
   non-constant name must carry ``# trt-names: NAME NAME[SPEC] ...`` on the same line,
   listing every name it can take (``FP16[<11]`` when only some versions can reach it).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parents[1]
SCANNED_PACKAGES = ("fcn_edge/engine", "fcn_edge/runtime", "fcn_edge/doctor")
SURFACE_DIR = REPO / "tests" / "data" / "trt_api_surface"
LOADER_FUNCTIONS = {"load_tensorrt"}
VERSIONS_MARK = re.compile(r"#\s*trt-versions:\s*([^#]+)")
NAMES_MARK = re.compile(r"#\s*trt-names:\s*([^#]+)")

Version = Tuple[int, ...]


def version_tuple(text: str) -> Version:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def _pad(v: Version, n: int = 4) -> Version:
    return v + (0,) * (n - len(v))


def spec_admits(spec: str, version: Version) -> bool:
    """``"<11"``, ``">=10"``, ``">=8.6,<11"``, ``"==10.3"`` against a version tuple."""
    for clause in spec.split(","):
        clause = clause.strip()
        if not clause:
            continue
        match = re.fullmatch(r"(<=|>=|==|!=|<|>)\s*([\d.]+)", clause)
        if not match:
            raise ValueError(f"bad trt-versions clause {clause!r}")
        op, bound = match.group(1), version_tuple(match.group(2))
        if op == "==":  # prefix match: ==10 admits every 10.x
            ok = version[: len(bound)] == bound
        elif op == "!=":
            ok = version[: len(bound)] != bound
        else:
            a, b = _pad(version), _pad(bound)
            ok = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Usage:
    name: str
    path: str
    line: int
    spec: Tuple[str, ...]  # gates in force (each must admit the version)
    probe: bool = False

    def applies_to(self, version: Version) -> bool:
        return all(spec_admits(s, version) for s in self.spec)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Gate:
    """An ``if caps.X:  # trt-versions: SPEC`` gate, checked against X's witness name."""

    capability: str
    spec: str
    path: str
    line: int


def _comments(source: str) -> Dict[int, str]:
    out: Dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def _annotation_text(node: Optional[ast.AST]) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def _mentions_trt(annotation: str) -> bool:
    return bool(re.search(r"\b(trt|tensorrt)\.", annotation))


def trt_returning_functions(tree: ast.AST) -> Set[str]:
    """Functions whose return annotation mentions ``trt.``: calls to them give TensorRT values."""
    return {
        n.name for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _mentions_trt(_annotation_text(n.returns))
    }


class _FileCollector:
    def __init__(self, path: Path, rel: str, trt_returning: Iterable[str] = ()):
        self.source = path.read_text()
        self.lines = self.source.splitlines()
        self.rel = rel
        self.comments = _comments(self.source)
        self.tree = ast.parse(self.source)
        self.usages: List[Usage] = []
        self.gates: List[Gate] = []
        self.dynamic_without_names: List[str] = []
        self.own_names: Set[str] = set()  # attributes our subclasses of TensorRT classes add
        # functions whose return annotation mentions trt.: calls to them give TensorRT values
        self.trt_returning: Set[str] = trt_returning_functions(self.tree) | set(trt_returning) | LOADER_FUNCTIONS

    # -- markers -------------------------------------------------------------------------
    def _versions_mark(self, line: int) -> Optional[str]:
        comment = self.comments.get(line, "")
        match = VERSIONS_MARK.search(comment)
        return match.group(1).strip() if match else None

    def _names_mark(self, line: int) -> Optional[List[Tuple[str, Optional[str]]]]:
        comment = self.comments.get(line, "")
        match = NAMES_MARK.search(comment)
        if not match:
            return None
        out = []
        for item in match.group(1).split():
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]+)\])?", item)
            if not m:
                raise ValueError(f"{self.rel}:{line}: bad trt-names entry {item!r}")
            out.append((m.group(1), m.group(2)))
        return out

    def _else_line(self, node: ast.If) -> Optional[int]:
        if not node.orelse:
            return None
        start = node.body[-1].end_lineno or node.body[-1].lineno
        for line in range(start + 1, node.orelse[0].lineno + 1):
            if re.match(r"^\s*else\s*:", self.lines[line - 1]):
                return line
        return None  # an elif: its own If node carries its mark

    # -- TensorRT-ness of expressions -----------------------------------------------------
    def is_trt(self, node: ast.AST, derived: Set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in derived
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return f"self.{node.attr}" in derived
            return self.is_trt(node.value, derived)
        if isinstance(node, ast.Subscript):
            return self.is_trt(node.value, derived)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id in self.trt_returning:
                    return True
                if func.id == "require" and node.args and isinstance(node.args[0], ast.Constant) \
                        and node.args[0].value == "tensorrt":
                    return True
                if func.id == "getattr" and node.args:
                    return self.is_trt(node.args[0], derived)
                return False
            if isinstance(func, ast.Attribute) and func.attr == "import_module" and node.args \
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value == "tensorrt":
                return True
            return self.is_trt(func, derived)
        if isinstance(node, ast.NamedExpr):
            return self.is_trt(node.value, derived)
        return False

    @staticmethod
    def _target_names(target: ast.AST) -> List[str]:
        if isinstance(target, ast.Name):
            return [target.id]
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            return [f"self.{target.attr}"]
        if isinstance(target, (ast.Tuple, ast.List)):
            return [n for elt in target.elts for n in _FileCollector._target_names(elt)]
        if isinstance(target, ast.Starred):
            return _FileCollector._target_names(target.value)
        return []

    def _own_nodes(self, body: Sequence[ast.stmt]) -> Iterable[ast.AST]:
        """Every node in ``body`` that is not inside a nested def/class."""
        stack: List[ast.AST] = list(body)
        while stack:
            node = stack.pop()
            yield node
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    stack.append(child)

    def _bindings(self, body: Sequence[ast.stmt], derived: Set[str]) -> Set[str]:
        """Fixed point of the names in ``body`` bound to TensorRT values."""
        derived = set(derived)
        changed = True
        while changed:
            changed = False
            for node in self._own_nodes(body):
                new: List[str] = []
                if isinstance(node, ast.Import):
                    new += [a.asname or a.name for a in node.names if a.name == "tensorrt"]
                elif isinstance(node, ast.Assign) and self.is_trt(node.value, derived):
                    for target in node.targets:
                        new += self._target_names(target)
                elif isinstance(node, ast.AnnAssign):
                    if _mentions_trt(_annotation_text(node.annotation)) or (
                        node.value is not None and self.is_trt(node.value, derived)
                    ):
                        new += self._target_names(node.target)
                elif isinstance(node, (ast.For, ast.comprehension)) and self.is_trt(node.iter, derived):
                    new += self._target_names(node.target)
                elif isinstance(node, ast.withitem) and node.optional_vars is not None \
                        and self.is_trt(node.context_expr, derived):
                    new += self._target_names(node.optional_vars)
                elif isinstance(node, ast.NamedExpr) and self.is_trt(node.value, derived):
                    new += self._target_names(node.target)
                for name in new:
                    if name not in derived:
                        derived.add(name)
                        changed = True
        return derived

    # -- usages ---------------------------------------------------------------------------
    def _record(self, name: str, line: int, spec: Tuple[str, ...], probe: bool = False) -> None:
        if name.startswith("__") and name.endswith("__"):
            return
        self.usages.append(Usage(name, self.rel, line, spec, probe))

    def _expression_usages(self, node: ast.AST, derived: Set[str], spec: Tuple[str, ...]) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and self.is_trt(sub.value, derived):
                if not (isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                    self._record(sub.attr, sub.lineno, spec)
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) \
                    and sub.func.id in ("getattr", "hasattr", "setattr") and sub.args \
                    and self.is_trt(sub.args[0], derived):
                if len(sub.args) >= 2 and isinstance(sub.args[1], ast.Constant) and isinstance(sub.args[1].value, str):
                    probe = sub.func.id == "hasattr" or (sub.func.id == "getattr" and len(sub.args) >= 3)
                    self._record(sub.args[1].value, sub.lineno, spec, probe)
                else:
                    names = self._names_mark(sub.lineno)
                    if names is None:
                        self.dynamic_without_names.append(
                            f"{self.rel}:{sub.lineno}: {sub.func.id}() on a TensorRT value with a computed "
                            "name: list its possible names in a '# trt-names: ...' comment on that line"
                        )
                        continue
                    for name, name_spec in names:
                        self._record(name, sub.lineno, spec + ((name_spec,) if name_spec else ()))

    def _statement_nodes_without_bodies(self, stmt: ast.stmt) -> List[ast.AST]:
        """The parts of a compound statement that are not its nested statement lists."""
        parts: List[ast.AST] = []
        for field, value in ast.iter_fields(stmt):
            if field in ("body", "orelse", "finalbody", "handlers"):
                continue
            if isinstance(value, list):
                parts += [v for v in value if isinstance(v, ast.AST)]
            elif isinstance(value, ast.AST):
                parts.append(value)
        return parts

    def walk_body(self, body: Sequence[ast.stmt], derived: Set[str], spec: Tuple[str, ...]) -> None:
        derived = self._bindings(body, derived)
        for stmt in body:
            self.walk_statement(stmt, derived, spec)

    def walk_statement(self, stmt: ast.stmt, derived: Set[str], spec: Tuple[str, ...]) -> None:
        mark = self._versions_mark(stmt.lineno)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner_spec = spec + ((mark,) if mark else ())
            inner = set(derived)
            args = stmt.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]:
                if arg.arg == "trt" or _mentions_trt(_annotation_text(arg.annotation)):
                    inner.add(arg.arg)
            for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
                self._expression_usages(default, derived, spec)
            for decorator in stmt.decorator_list:
                self._expression_usages(decorator, derived, spec)
            self.walk_body(stmt.body, inner, inner_spec)
            return
        if isinstance(stmt, ast.ClassDef):
            inner_spec = spec + ((mark,) if mark else ())
            for base in stmt.bases:
                self._expression_usages(base, derived, spec)
            if any(self.is_trt(base, derived) for base in stmt.bases):
                # A subclass of a TensorRT class (logger, calibrator): the methods it defines
                # override TensorRT's and must exist there; its own self.<attr> are ours.
                for method in stmt.body:
                    if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._record(method.name, method.lineno, inner_spec)
                        for node in ast.walk(method):
                            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                                self.own_names.add(node.attr)
            # self.<attr> bound to TensorRT values in any method counts in all of them
            class_derived = set(derived)
            for method in stmt.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    method_derived = set(derived)
                    for arg in method.args.args:
                        if arg.arg == "trt" or _mentions_trt(_annotation_text(arg.annotation)):
                            method_derived.add(arg.arg)
                    bound = self._bindings(method.body, method_derived | class_derived)
                    class_derived |= {n for n in bound if n.startswith("self.")}
            self.walk_body(stmt.body, class_derived, inner_spec)
            return
        if isinstance(stmt, ast.If):
            self._expression_usages(stmt.test, derived, spec)
            if mark:
                self._maybe_gate(stmt, mark)
            self.walk_body(stmt.body, derived, spec + ((mark,) if mark else ()))
            else_line = self._else_line(stmt)
            else_mark = self._versions_mark(else_line) if else_line else None
            self.walk_body(stmt.orelse, derived, spec + ((else_mark,) if else_mark else ()))
            return
        stmt_spec = spec + ((mark,) if mark else ())
        for part in self._statement_nodes_without_bodies(stmt):
            self._expression_usages(part, derived, stmt_spec)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if block:
                self.walk_body(block, derived, stmt_spec)
        for handler in getattr(stmt, "handlers", []) or []:
            if handler.type is not None:
                self._expression_usages(handler.type, derived, stmt_spec)
            self.walk_body(handler.body, derived, stmt_spec)

    def _maybe_gate(self, stmt: ast.If, spec: str) -> None:
        test = stmt.test
        if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name):
            self.gates.append(Gate(test.attr, spec, self.rel, stmt.lineno))

    def collect(self) -> None:
        self.walk_body(self.tree.body, set(), ())


@dataclass
class Collected:
    usages: List[Usage]
    own_names: Set[str]
    gates: List[Gate]
    dynamic_without_names: List[str]
    files: List[str]


def scanned_files(root: Path = REPO) -> List[Path]:
    files: List[Path] = []
    for package in SCANNED_PACKAGES:
        files += sorted((root / package).rglob("*.py"))
    return files


def collect_usages(files: Optional[Sequence[Path]] = None, root: Path = REPO) -> Collected:
    usages: List[Usage] = []
    gates: List[Gate] = []
    dynamic: List[str] = []
    names: List[str] = []
    own: Set[str] = set()
    paths = list(files if files is not None else scanned_files(root))
    # functions returning TensorRT objects, across every scanned file (one may import another's)
    returning: Set[str] = set()
    for path in paths:
        returning |= trt_returning_functions(ast.parse(path.read_text()))
    for path in paths:
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        collector = _FileCollector(path, rel, returning)
        collector.collect()
        usages += collector.usages
        gates += collector.gates
        dynamic += collector.dynamic_without_names
        own |= collector.own_names
        names.append(rel)
    usages = [u for u in usages if u.name not in own]
    return Collected(usages, own, gates, dynamic, names)


# -- surfaces ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Surface:
    label: str  # "10.3.0"
    version: Version
    names: FrozenSet[str]
    path: Path

    def has(self, name: str) -> bool:
        """Listed exactly: tools/trt_api_surface.py lists the very strings the bindings
        register, so a short name never passes as the tail of a longer one."""
        return name in self.names


def load_surface(path: Path) -> Surface:
    label = path.stem.split("-", 1)[1]
    names = frozenset(
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    return Surface(label, version_tuple(label), names, path)


def load_surfaces(directory: Path = SURFACE_DIR) -> List[Surface]:
    return sorted((load_surface(p) for p in directory.glob("tensorrt-*.txt")), key=lambda s: s.version)


def missing_names(collected: Collected, surface: Surface) -> List[str]:
    """Every non-probe usage that applies to ``surface``'s version and is not in it."""
    out = []
    cache: Dict[str, bool] = {}
    for usage in collected.usages:
        if usage.probe or not usage.applies_to(surface.version):
            continue
        if usage.name not in cache:
            cache[usage.name] = surface.has(usage.name)
        if not cache[usage.name]:
            gate = f" (gated {', '.join(usage.spec)})" if usage.spec else ""
            out.append(f"{usage.where}: '{usage.name}'{gate} is not in TensorRT {surface.label}'s API")
    return out
