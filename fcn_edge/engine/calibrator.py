"""TensorRT's legacy INT8 calibrator (TensorRT 8.5 - 10.x), fed by an iterable of batches.

``--int8-mode implicit`` lets TensorRT pick INT8 scales itself from batches of real
images. Like Polygraphy's ``Calibrator(data_loader)``, the build takes any iterable of
``{input_name: array}`` batches and knows nothing of images: the CLI makes them with
:func:`fcn_edge.precision.calibration.calibration_batches`, which preprocesses exactly as
the runtime does, so the scales fit what the engine will see. The first batch's shapes are
the calibration profile; every later batch must have them. TensorRT reads every calibration
input as float32, whatever the network input's type (trtexec allocates volume x
sizeof(float) per input; Polygraphy feeds non-index inputs as FP32), so the uint8 frames of
a fused model are uploaded as float32 with the same values. Scales are cached in a file: a
second build reads them and needs no batches. TensorRT 11 has no calibrator classes;
:mod:`fcn_edge.engine.plan` refuses that case before we get here.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from fcn_edge.artifacts import ProfileShapes
from fcn_edge.artifacts.shapes import format_shape
from fcn_edge.atomic import write_bytes_atomic
from fcn_edge.errors import DataError, EngineBuildError

log = logging.getLogger(__name__)

Batch = Mapping[str, np.ndarray]


def calibration_source(batches: Iterable[Batch]) -> str:
    """How messages name a calibration iterable: its ``source`` when it has one (as
    :class:`fcn_edge.precision.calibration.CalibrationData` does)."""
    return str(getattr(batches, "source", "") or "(calibration batches)")


def first_batch(batches: Iterable[Batch], source: str) -> Tuple[Batch, Iterator[Batch]]:
    """The first batch, and an iterator that yields it again before the rest: the build
    looks at the first batch's shapes, and a one-shot generator still calibrates on all."""
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise DataError(
            f"calibration set {source}: the data loader provided no data (a generator cannot be "
            "rewound; pass a re-iterable such as calibration_batches())"
        )
    return first, itertools.chain([first], iterator)


def calibration_shapes(first: Batch, profiles: Sequence[ProfileShapes], source: str) -> Dict[str, Tuple[int, ...]]:
    """The calibration profile: each input's shape in the first batch, which must lie within
    the optimisation profile (TensorRT calibrates at one shape)."""
    names = [p.input_name for p in profiles]
    missing = [n for n in names if n not in first]
    if missing:
        raise DataError(f"calibration set {source}: batches hold {sorted(first)} but the network's inputs are {names}")
    shapes = {}
    for profile in profiles:
        shape = tuple(int(d) for d in np.shape(first[profile.input_name]))
        inside = len(shape) == len(profile.min) and all(
            lo <= d <= hi for d, lo, hi in zip(shape, profile.min, profile.max))
        if not inside:
            raise DataError(
                f"calibration set {source}: batches of input '{profile.input_name}' are {format_shape(shape)}, "
                f"outside the optimisation profile {format_shape(profile.min)} .. {format_shape(profile.max)}; "
                f"make them the profile's opt shape {format_shape(profile.opt)}"
            )
        shapes[profile.input_name] = shape
    return shapes


# Image inputs whose values calibrate as float32 unchanged; index inputs (int32/int64/bool)
# cannot go through a calibrator that reads float32.
_IMAGE_DTYPES = ("float32", "float16", "float64", "uint8", "int8")


def _as_calibration_array(array: np.ndarray, name: str, source: str) -> np.ndarray:
    """``array`` as the contiguous float32 TensorRT's calibrator reads."""
    array = np.asarray(array)
    if array.dtype.name not in _IMAGE_DTYPES:
        raise DataError(
            f"calibration set {source}: input '{name}' is {array.dtype}, and TensorRT's legacy calibrator "
            "reads every input as float32; calibrate image inputs only, or use a Q/DQ ONNX "
            "(--int8-mode explicit)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


class _BatchFeeder:
    """Uploads ``{name: array}`` batches into device buffers allocated once."""

    def __init__(self, batches: Optional[Iterable[Batch]], device: Any, source: str):
        self._iterator: Optional[Iterator[Batch]] = iter(batches) if batches is not None else None
        self._device = device
        self._source = source
        self._buffers: Dict[str, int] = {}
        self._shapes: Dict[str, tuple] = {}
        self._dtypes: Dict[str, np.dtype] = {}
        self.batches_fed = 0

    def next_pointers(self, names: List[str]) -> Optional[List[int]]:
        if self._iterator is None:
            return None
        batch = next(self._iterator, None)
        if batch is None:
            return None
        missing = [n for n in names if n not in batch]
        if missing:
            raise DataError(
                f"calibration set {self._source}: batches hold {sorted(batch)} but TensorRT asks for "
                f"inputs {names}"
            )
        pointers = []
        for name in names:
            given = np.asarray(batch[name])
            array = _as_calibration_array(given, name, self._source)
            if name not in self._buffers:
                self._buffers[name] = self._device.alloc(array.nbytes)
                self._shapes[name] = given.shape
                self._dtypes[name] = given.dtype
            elif given.shape != self._shapes[name] or given.dtype != self._dtypes[name]:
                raise DataError(
                    f"calibration set {self._source}: batch {self.batches_fed} of input '{name}' is "
                    f"{given.shape} {given.dtype}, the first was {self._shapes[name]} {self._dtypes[name]}; "
                    "every batch must have the same shape (pad the last one)"
                )
            self._device.upload(self._buffers[name], array)
            pointers.append(self._buffers[name])
        self.batches_fed += 1
        return pointers

    def release(self) -> None:
        for pointer in self._buffers.values():
            self._device.free(pointer)
        self._buffers.clear()


def make_calibrator(  # trt-versions: <11
    trt: Any,
    class_name: str,
    batches: Optional[Iterable[Batch]],
    cache_path: Optional[Path],
    device: Any,
    source: str = "",
) -> Any:
    """An instance of a subclass of ``trt.<class_name>`` (IInt8EntropyCalibrator2 or
    IInt8MinMaxCalibrator). ``batches`` may be None when ``cache_path`` holds the scales.

    An exception raised while TensorRT calls back into Python cannot cross TensorRT's C++
    frames intact; it is kept on ``calibrator.error`` and re-raised by the build.
    """
    base = getattr(trt, class_name, None)  # trt-names: IInt8EntropyCalibrator2 IInt8MinMaxCalibrator
    if base is None:
        raise EngineBuildError(
            f"{class_name} is not available on TensorRT {getattr(trt, '__version__', '?')}: use a "
            "Q/DQ ONNX with --int8-mode explicit"
        )
    feeder = _BatchFeeder(batches, device, source or "(calibration batches)")

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.error: Optional[BaseException] = None
            self.feeder = feeder
            self.cache_path = Path(cache_path) if cache_path else None

        def get_batch_size(self) -> int:
            # Networks are explicit-batch: each batch's shape (the calibration profile's)
            # includes its batch dimension, and TensorRT wants 1 here (as Polygraphy does).
            return 1

        def get_batch(self, names, *_):  # TensorRT passes the input names
            if self.error is not None:
                return None
            try:
                return feeder.next_pointers(list(names))
            except BaseException as exc:  # noqa: BLE001 - handed back to the build
                self.error = exc
                return None

        def read_calibration_cache(self):
            if self.cache_path is not None and self.cache_path.is_file():
                data = self.cache_path.read_bytes()
                if data:  # an empty file means: calibrate again
                    log.info("reading INT8 calibration scales from %s", self.cache_path)
                    return data
            return None

        def write_calibration_cache(self, cache) -> None:
            if self.cache_path is None or self.error is not None:
                return  # scales from a calibration that failed part-way must not be reused
            try:
                write_bytes_atomic(self.cache_path, bytes(cache))
                log.info("wrote INT8 calibration scales to %s", self.cache_path)
            except OSError as exc:
                self.error = EngineBuildError(f"{self.cache_path}: cannot write the calibration cache: {exc}")

    return Calibrator()
