"""What a benchmark runs: models x backends x input sizes, and finding precision variants.

``fcn-edge quantize model.onnx`` writes ``model.fp16.onnx`` and ``model.int8.onnx`` beside
the FP32 file, so ``--precision fp32 fp16 int8`` on ``model.onnx`` finds them by name.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from fcn_edge.artifacts.shapes import Size
from fcn_edge.artifacts.variants import split_variant, variant_path
from fcn_edge.bench.errors import BenchmarkError
from fcn_edge.runtime.triton_uri import is_triton_uri


@dataclass(frozen=True)
class Variant:
    """One thing to time: a model file (or a ``triton://`` model) on a backend at an input
    size (None: the meta's).

    ``providers`` apply to an ONNX model, ``cuda_graph`` and ``cuda`` (the CUDA library) to
    a TensorRT engine; ``device`` is the CUDA device of either.
    """

    model: Union[Path, str]
    backend: str = "auto"
    input_size: Optional[Size] = None
    providers: Optional[Tuple[str, ...]] = None
    threads: Optional[int] = None
    device: int = 0
    cuda_graph: bool = False
    cuda: Optional[str] = None

    @property
    def label(self) -> str:
        size = f" {self.input_size[0]}x{self.input_size[1]}" if self.input_size else ""
        backend = "" if self.backend == "auto" else f" [{self.backend}]"
        name = self.model.rsplit("/", 1)[-1] if is_triton_uri(self.model) else Path(self.model).name
        return f"{name}{size}{backend}"


def precision_sibling(model: Path, precision: str) -> Path:
    """The ``precision`` variant beside ``model`` (``model.int8.onnx``), named as
    :func:`fcn_edge.artifacts.variant_path` names it; ``model.fp32.onnx`` also counts as fp32."""
    candidate = variant_path(model, precision)
    if precision == "fp32" and not candidate.is_file():
        stem, _, suffix = split_variant(model)
        explicit = model.with_name(f"{stem}.fp32{suffix}")
        if explicit.is_file():
            return explicit
    if not candidate.is_file():
        base = variant_path(model, "fp32")
        target = " --target onnxruntime" if precision == "int8-ort" else ""
        make = (f"fcn-edge quantize {base} --precision {precision.split('-')[0]}{target}"
                if base.suffix == ".onnx" else "build it from the matching ONNX variant")
        raise BenchmarkError(f"{candidate}: no {precision} variant of {model.name} found; {make}")
    return candidate


def expand_models(models: Sequence[Union[Path, str]], precisions: Optional[Sequence[str]]) -> List[Union[Path, str]]:
    """Each model, or each model's precision variants in the order asked; no duplicates.
    A ``triton://`` model is taken as it is (its variants are other served models)."""
    out: List[Union[Path, str]] = []
    for model in models:
        if is_triton_uri(model):
            if precisions:
                raise BenchmarkError(f"{model}: --precision finds variant files beside a model file; "
                                     "name each served variant's triton:// URI instead")
            if model not in out:
                out.append(model)
            continue
        model = Path(model)
        if not model.is_file():
            raise BenchmarkError(f"{model}: no such model file")
        found = [precision_sibling(model, p) for p in precisions] if precisions else [model]
        for path in found:
            if path not in out:
                out.append(path)
    return out


def expand_variants(
    models: Iterable[Path],
    backends: Sequence[str] = ("auto",),
    sizes: Sequence[Optional[Size]] = (None,),
    providers: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    device: int = 0,
    cuda_graph: bool = False,
    cuda: Optional[str] = None,
) -> List[Variant]:
    """The cartesian product, model-major so a table groups each model's rows together."""
    provider_tuple = tuple(providers) if providers else None
    return [
        Variant(model if is_triton_uri(model) else Path(model), backend, size, provider_tuple, threads, device,
                cuda_graph, cuda)
        for model, size, backend in itertools.product(list(models), list(sizes) or [None], list(backends) or ["auto"])
    ]
