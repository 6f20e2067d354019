"""Calibration sets: images -> ``{input_name: batch}`` dicts, preprocessed like the runtime.

A calibration set is either a folder of images (searched recursively, sorted by path) or a
manifest: a text file with one image path per line, relative to the manifest's folder
unless absolute; blank lines and lines starting with ``#`` are ignored.

:class:`CalibrationData` is the one calibration data path of the project (STYLE.md #9):
the INT8 Q/DQ calibration in :mod:`fcn_edge.precision.quantize` and the legacy TensorRT
calibrator in :mod:`fcn_edge.engine` both iterate it. It is re-iterable (each ``iter()``
reads the images again), unlike a generator, so calibrating in several passes works.
Images go through :class:`fcn_edge.runtime.preprocess.Preprocessor`, the runtime's own
code, so a fused-preprocessing model is fed uint8 NHWC BGR and an unfused one normalised
float NCHW RGB, exactly as at inference time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from fcn_edge.artifacts import ModelMeta
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
MANIFEST_EXTENSIONS = (".txt", ".lst", ".list")
# Fewer images than this get a warning (calibration/README.md, "How many"): below it the
# rare classes may never light up the channels that detect them. TensorRT's and
# ModelOpt's guides use hundreds (ModelOpt's default calibration size is 512).
MIN_CALIBRATION_IMAGES = 32


# -- '--calib default': the default model's built-in set ---------------------------------
DEFAULT_SOURCE = "default"


def resolve_calibration_source(text: PathLike) -> Path:
    """``--calib`` as a path: 'default' (or '') is the default model's built-in set,
    shipped inside the package (``fcn_edge/weights/calibration``), unless a file or folder
    of that name exists here; anything else is taken as the path it names."""
    if str(text) in ("", DEFAULT_SOURCE):
        if str(text) and Path(text).exists():
            return Path(text)
        from fcn_edge.weights import default_calibration

        return default_calibration()
    return Path(text)


def list_calibration_images(source: PathLike) -> List[Path]:
    """The image paths of a calibration set (a folder or a manifest), in a stable order.

    Raises :class:`DataError` when the source is missing or lists no image at all. Paths
    a manifest names but that do not exist are kept: they are reported, together with
    unreadable files, by the single warning :class:`CalibrationData` gives.
    """
    source = Path(source)
    if source.is_dir():
        images = sorted(
            p for p in source.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        if not images:
            raise DataError(
                f"calibration set {source}: the folder holds no images "
                f"(looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
            )
        return images
    if source.is_file():
        if source.suffix.lower() in IMAGE_EXTENSIONS:
            return [source]
        try:
            text = source.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"calibration manifest {source}: cannot read it as text: {exc}") from exc
        images = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            path = Path(os.path.expanduser(line))
            images.append(path if path.is_absolute() else source.parent / path)
        if not images:
            raise DataError(
                f"calibration manifest {source}: lists no image paths "
                "(one path per line; '#' starts a comment)"
            )
        return images
    raise DataError(
        f"calibration set {source}: no such folder or manifest file; give a folder of "
        "images or a text file with one image path per line (see calibration/README.md); "
        "'default' is the default model's built-in set"
    )


def truncation(data: bytes, suffix: str) -> str:
    """Why an encoded JPEG or PNG is cut short, or "" when it ends as its format ends.

    OpenCV decodes a truncated JPEG without an error (libjpeg fills the missing rows with
    grey and prints a warning on stderr), so the end marker is checked: a JPEG ends with
    EOI (FF D9; trailing zero padding allowed), a PNG with its IEND chunk.
    """
    suffix = suffix.lower()
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return "truncated JPEG: no end-of-image marker, it would decode half grey"
    elif suffix == ".png" and data[:8] == b"\x89PNG\r\n\x1a\n":
        if not data.endswith(b"IEND\xaeB`\x82"):
            return "truncated PNG: no IEND chunk"
    return ""


def read_image(path: Path) -> Tuple[Optional[np.ndarray], str]:
    """(BGR uint8 image, "") or (None, why it could not be used: missing, unreadable,
    truncated)."""
    import cv2

    if not path.is_file():
        return None, "no such file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    why = truncation(data, path.suffix)
    if why:
        return None, why
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        return None, "not a readable image"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return None, "empty image"
    return image, ""


@dataclass(frozen=True)
class CalibrationConfig:
    """How a calibration set is read.

    ``pad_last`` repeats images of the last, partial batch so that every batch has
    ``batch_size`` images; the legacy TensorRT calibrator needs that, a fixed-batch
    ONNX graph too. ``limit`` reads only the first N images of the set.
    """

    batch_size: int = 8
    limit: Optional[int] = None
    pad_last: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise DataError(f"calibration batch_size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise DataError(f"calibration limit must be >= 1, got {self.limit}")


class CalibrationData:
    """A re-iterable sequence of ``{meta.input_name: array}`` calibration batches.

    Each yielded array is a fresh copy, safe to keep. After an iteration, ``skipped``
    lists the ``(path, reason)`` of images that could not be read; they were reported in
    one warning. If no image at all could be read the iteration raises
    :class:`DataError` instead of ending quietly with no data.
    """

    def __init__(
        self,
        source: Union[PathLike, Sequence[PathLike]],
        meta: ModelMeta,
        config: CalibrationConfig = CalibrationConfig(),
        input_size: Optional[Tuple[int, int]] = None,
    ):
        if isinstance(source, (str, os.PathLike)):
            self.source = str(source)
            images = list_calibration_images(source)
        else:
            images = [Path(p) for p in source]
            self.source = f"{len(images)} listed images"
            if not images:
                raise DataError("calibration set: the list of images is empty")
        if config.limit is not None:
            images = images[: config.limit]
        self.images: List[Path] = images
        self.meta = meta
        self.config = config
        self.input_size = tuple(input_size or meta.input_size)
        self.input_name = meta.input_name
        self.skipped: List[Tuple[Path, str]] = []
        self._warned_small = False

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def __len__(self) -> int:
        """Number of batches one iteration yields when every image reads."""
        return -(-len(self.images) // self.config.batch_size)

    def fingerprint(self) -> str:
        """Identifies the set's content and preprocessing, for calibration caches."""
        import hashlib

        digest = hashlib.sha256()
        digest.update(repr((self.input_size, self.meta.input_dtype, self.meta.input_layout,
                            self.meta.mean, self.meta.std, self.meta.resize_mode,
                            self.meta.channel_order)).encode())
        for path in self.images:
            try:
                stat = path.stat()
                digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{path}|missing\n".encode())
        return digest.hexdigest()

    def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
        from fcn_edge.runtime.preprocess import Preprocessor

        preprocess = Preprocessor(self.meta, self.input_size)
        batch_size = self.config.batch_size
        skipped: List[Tuple[Path, str]] = []
        frames: List[np.ndarray] = []
        produced = 0
        progress = tqdm(total=len(self.images), desc="calibration", unit="img", leave=False,
                        disable=not self.config.progress)
        try:
            for path in self.images:
                image, why = read_image(path)
                progress.update(1)
                if image is None:
                    skipped.append((path, why))
                    continue
                frames.append(image)
                if len(frames) == batch_size:
                    batch, _ = preprocess(frames)
                    produced += len(frames)
                    frames = []
                    yield {self.input_name: batch.copy()}
            if frames:
                if self.config.pad_last:
                    frames += [frames[i % len(frames)] for i in range(batch_size - len(frames))]
                batch, _ = preprocess(frames)
                produced += len(frames)
                yield {self.input_name: batch.copy()}
        finally:
            progress.close()
            self.skipped = skipped
        if skipped:
            listing = "; ".join(f"{p} ({why})" for p, why in skipped)
            if produced == 0:
                raise DataError(
                    f"calibration set {self.source}: none of its {len(self.images)} images "
                    f"could be read: {listing}"
                )
            log.warning(
                "calibration set %s: skipped %d of %d images that could not be read: %s",
                self.source, len(skipped), len(self.images), listing,
            )
        if produced == 0:
            raise DataError(f"calibration set {self.source}: the data loader provided no data")
        read = len(self.images) - len(skipped)
        if read < MIN_CALIBRATION_IMAGES and not self._warned_small:
            self._warned_small = True
            log.warning(
                "calibration set %s: only %d image%s could be used; at least %d are needed for ranges that cover "
                "the rare classes (TensorRT's and ModelOpt's guides use hundreds; see calibration/README.md)",
                self.source, read, "" if read == 1 else "s", MIN_CALIBRATION_IMAGES,
            )


def calibration_batches(
    source: Union[PathLike, Sequence[PathLike]],
    meta: ModelMeta,
    batch_size: int = 8,
    limit: Optional[int] = None,
    pad_last: bool = False,
    progress: bool = True,
    input_size: Optional[Tuple[int, int]] = None,
) -> CalibrationData:
    """Shorthand for ``CalibrationData(source, meta, CalibrationConfig(...))``."""
    config = CalibrationConfig(batch_size=batch_size, limit=limit, pad_last=pad_last, progress=progress)
    return CalibrationData(source, meta, config, input_size)
