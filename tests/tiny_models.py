"""The one maker of tiny models for every test, built the way the product builds them.

The network is the registry's ``fcn8s_tiny`` (a few-thousand-parameter backbone under the
real FCN-8s head); ONNX files come out of the real exporter (:func:`fcn_edge.export.export_model`,
with its fused-preprocessing and argmax wrappers), FP16 and INT8 variants out of the real
``fcn_edge.precision`` converters, checkpoints out of ``save_checkpoint``. A test that needs
"an fcn-edge ONNX" therefore gets exactly what a user gets from ``fcn-edge export``.

Files are made once per session per set of arguments and copied to where a test asks.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fcn_edge.artifacts import ModelMeta, meta_for_classes

ARCH = "fcn8s_tiny"
CLASSES = ("background", "road", "car", "person", "sky")
NUM_CLASSES = len(CLASSES)
INPUT_SIZE = (32, 48)  # (height, width)


@dataclass(frozen=True)
class TinySpec:
    """What to make; every field has the value most tests want."""

    fused: bool = False  # uint8 NHWC BGR frames in, normalised in the graph
    output_kind: str = "logits"  # or "mask" (argmax in the graph)
    mask_dtype: str = "uint8"
    argmax: str = "topk"  # or "reduce" (the mask without TopK)
    fuse_resize: bool = False  # frames of any size (120x160 .. 2160x3840) in, resized in the graph
    precision: str = "fp32"  # fp32 | fp16 | int8 (through the product's converters)
    min_tensorrt: int = 10  # int8: 10 = mixed INT8/FP16 at opset 19; 8 = FP32 Q/DQ that TensorRT 8.x parses
    input_size: Tuple[int, int] = INPUT_SIZE
    min_size: Tuple[int, int] = (16, 16)
    max_size: Tuple[int, int] = (128, 160)
    max_batch: int = 4
    dynamic: bool = True  # dynamic batch, height and width; False fixes batch 1 and input_size
    resize_mode: str = "stretch"
    classes: Tuple[str, ...] = CLASSES
    seed: int = 0


_CACHE: Dict[TinySpec, Path] = {}
_CACHE_DIR: Optional[Path] = None


def _cache_dir() -> Path:
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="fcn-edge-tiny-"))
    return _CACHE_DIR


def tiny_meta(spec: TinySpec = TinySpec()) -> ModelMeta:
    """The ModelMeta a tiny model is exported with (before export adds its layout fields)."""
    sizes = dict(min_size=spec.min_size, max_size=spec.max_size) if spec.dynamic else {}
    return meta_for_classes(ARCH, spec.classes, input_size=spec.input_size, resize_mode=spec.resize_mode,
                            max_batch=spec.max_batch if spec.dynamic else 1, dynamic_batch=spec.dynamic, **sizes)


def tiny_torch_model(spec: TinySpec = TinySpec()):
    """The ``fcn8s_tiny`` network with seeded weights whose scores are spread enough that
    argmax ties are rare (the product's own smoke-test model, as ``fcn-edge doctor`` builds it)."""
    from fcn_edge.models.tiny import smoke_test_model

    return smoke_test_model(len(spec.classes), spec.seed)


def _export(spec: TinySpec, out: Path) -> Path:
    from fcn_edge.export import ExportConfig, export_model

    if spec.fused or spec.output_kind == "mask":
        import pytest

        pytest.importorskip("onnx_graphsurgeon", reason="grafting the fused heads needs onnx-graphsurgeon "
                            "(pip install 'fcn-edge[export]')")

    config = ExportConfig(
        input_size=spec.input_size, dynamic_batch=spec.dynamic, dynamic_shape=spec.dynamic,
        min_size=spec.min_size if spec.dynamic and not spec.fuse_resize else None,
        max_size=spec.max_size if spec.dynamic and not spec.fuse_resize else None,
        max_batch=spec.max_batch if spec.dynamic else 1, fuse_preprocess=spec.fused, output=spec.output_kind,
        mask_dtype=spec.mask_dtype, argmax=spec.argmax, fuse_resize=spec.fuse_resize, seed=spec.seed,
    )
    export_model(tiny_torch_model(spec), tiny_meta(spec), out, config)
    return out


def _make(spec: TinySpec) -> Path:
    cached = _CACHE.get(spec)
    if cached is not None and cached.is_file():
        return cached
    directory = _cache_dir()
    name = f"tiny-{abs(hash(spec)):x}"
    if spec.precision == "fp32":
        path = _export(spec, directory / f"{name}.onnx")
    else:
        base = _make(replace(spec, precision="fp32", min_tensorrt=10))
        if spec.precision == "fp16":
            from fcn_edge.precision.fp16 import convert_fp16

            path = convert_fp16(base, directory / f"{name}.onnx").path
        elif spec.precision == "int8":
            from fcn_edge.precision.quantize import QuantizeConfig, quantize_int8

            images = make_images(directory / "calibration", 8)
            path = quantize_int8(base, images, directory / f"{name}.onnx",
                                 QuantizeConfig(min_tensorrt=spec.min_tensorrt, use_cache=False, progress=False)).path
        else:
            raise ValueError(f"precision {spec.precision!r}")
    _CACHE[spec] = path
    return path


def make_tiny_onnx(target: Path, **fields) -> Path:
    """Write the tiny model described by ``fields`` (see :class:`TinySpec`) and return its path.

    ``target`` is a file path ending in .onnx, or a folder (the file is named after the spec).
    """
    spec = TinySpec(**fields)
    source = _make(spec)
    target = Path(target)
    if target.suffix != ".onnx":
        variant = ("fused-resize" if spec.fuse_resize else "fused") if spec.fused else "unfused"
        target = target / f"tiny-{variant}-{spec.output_kind}-{spec.precision}-{spec.resize_mode}-" \
                          f"{spec.input_size[0]}x{spec.input_size[1]}{'' if spec.dynamic else '-static'}" \
                          f"{'-reduce' if spec.argmax == 'reduce' else ''}.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def make_foreign_onnx(target: Path, layout: str = "NCHW", channel_order: str = "RGB", scores: str = "NCHW",
                      classes: int = NUM_CLASSES, dynamic: bool = True, opset: int = 13, seed: int = 0) -> Path:
    """The tiny network as another tool would write it, with torch.onnx.export and no fcn-edge:
    no ModelMeta, an input named ``images`` in ``layout`` that the network reads in
    ``channel_order``, and ``scores`` as (N, C, H, W), (N, H, W, C) or a softmax over
    (N, H*W, C) ("NLC", the Keras FCNs' head) in an output named ``out`` (a dict, as
    torchvision's FCN returns). Normalisation is the caller's: the graph takes normalised floats.
    """
    import io
    import warnings

    import torch

    net = tiny_torch_model(TinySpec(classes=tuple(f"c{i}" for i in range(classes)), seed=seed))

    class Foreign(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            if layout == "NHWC":
                x = x.permute(0, 3, 1, 2)
            if channel_order == "BGR":
                x = x.flip(1)  # the inner network reads RGB
            y = self.net(x)
            if scores == "NHWC":
                y = y.permute(0, 2, 3, 1)
            elif scores == "NLC":
                y = torch.softmax(y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, y.shape[1]), dim=-1)
            return {"out": y}

    h, w = INPUT_SIZE
    example = torch.randn(2, 3, h, w) if layout == "NCHW" else torch.randn(2, h, w, 3)
    axes = {"images": {0: "n", 2: "h", 3: "w"} if layout == "NCHW" else {0: "n", 1: "h", 2: "w"}} if dynamic else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(Foreign().eval(), (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["out"], dynamic_axes=axes)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return target


def make_tiny_checkpoint(target: Path, **fields) -> Path:
    """An fcn-edge ``.pt`` checkpoint of the same tiny network (what ``fcn-edge train`` writes)."""
    from fcn_edge.models import save_checkpoint

    spec = TinySpec(**fields)
    target = Path(target)
    if target.suffix not in (".pt", ".pth"):
        target = target / "tiny.pt"
    return save_checkpoint(target, tiny_torch_model(spec), tiny_meta(spec))


def sample_frame(height: int = 120, width: int = 160, seed: int = 1) -> np.ndarray:
    """A BGR frame with smooth structure, so masks have regions rather than noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([
        127 + 120 * np.sin(xx / 9.0 + rng.uniform(0, 6)),
        127 + 120 * np.cos(yy / 7.0 + rng.uniform(0, 6)),
        127 + 120 * np.sin((xx + yy) / 13.0),
    ], axis=-1)
    return np.clip(frame, 0, 255).astype(np.uint8)


def sample_input(meta: ModelMeta, batch: int = 1, size=None, seed: int = 1) -> np.ndarray:
    """A random network input in the graph's own layout and dtype."""
    rng = np.random.default_rng(seed)
    shape = meta.input_shape(batch, size)
    if meta.input_dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.normal(0, 1, shape).astype(np.float32)


def make_images(folder: Path, count: int, seed: int = 0, size: Tuple[int, int] = (40, 56)) -> List[Path]:
    """Smooth random colour blobs: structured enough for meaningful activation ranges."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        small = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        image = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        path = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def make_dataset(root: Path, count: int, seed: int = 1, classes: Sequence[str] = CLASSES) -> Path:
    """A folder-pair dataset (images/, masks/, classes.txt) whose labels are a simple
    function of colour, so a model's mean IU is defined (not meaningful for random nets)."""
    from fcn_edge.classes import default_palette
    from fcn_edge.data.images import write_label_png

    root = Path(root)
    images = make_images(root / "images", count, seed)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for path in images:
        image = cv2.imread(str(path))
        mask = (image.argmax(axis=2) + (image.mean(axis=2) > 128)).astype(np.uint8) % len(classes)
        write_label_png(root / "masks" / f"{path.stem}.png", mask, default_palette(len(classes)))
    return root


def quantize_and_plan_int8(fused: Path, calib: Path, capsys, opt_shape: str) -> Path:
    """What a user types to take a fused ONNX to INT8 engines on every TensorRT a Jetson has:
    ``quantize`` twice (mixed INT8/FP16 for 10/11; FP32 Q/DQ at opset 17 for 8.5/8.6) and
    ``build-engine --dry-run`` for 8.6, 10.3 and 11.4, each planning an INT8 engine whose
    profile's opt shape is ``opt_shape``. Returns the 10/11 INT8 file."""
    from fcn_edge.cli.main import main

    int8, int8_trt8 = fused.with_suffix(".int8.onnx"), fused.with_suffix(".int8-trt8.onnx")
    for out, extra in ((int8, []), (int8_trt8, ["--min-tensorrt", "8"])):
        assert main(["quantize", str(fused), "--precision", "int8", "--calib", str(calib), *extra, "-o", str(out),
                     "--quiet", "--no-cache"]) == 0, capsys.readouterr().err
    for version, model in (("8.6", int8_trt8), ("10.3", int8), ("11.4", int8)):
        code = main(["build-engine", str(model), "--dry-run", "--trt-version", version])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "engine precision  int8" in out.out and opt_shape in out.out, out.out
    return int8
