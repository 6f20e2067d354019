"""Open any supported dataset by path, detecting its layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from fcn_edge.data.cityscapes import is_cityscapes_root, open_cityscapes
from fcn_edge.data.dataset import SegmentationDataset
from fcn_edge.data.folder import is_folder_root, open_folder
from fcn_edge.data.voc import open_voc, resolve_voc_root
from fcn_edge.errors import DataError
from fcn_edge.paths import PathLike

FORMATS = ("auto", "voc", "cityscapes", "folder")
SYNTHETIC = "synthetic"  # the built-in generated set: `--data synthetic`


def detect_format(root: PathLike) -> str:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: dataset folder not found")
    if is_cityscapes_root(root):
        return "cityscapes"
    if is_folder_root(root):
        return "folder"
    try:
        resolve_voc_root(root)
        return "voc"
    except DataError:
        pass
    raise DataError(
        f"{root}: unknown dataset layout; expected VOC (JPEGImages/ + SegmentationClass/), "
        "Cityscapes (leftImg8bit/ + gtFine/) or a folder pair (images/ + masks/ + classes.txt)"
    )


def default_split(root: PathLike, fmt: str, training: bool = False) -> str:
    if fmt == "folder" and not (Path(root) / "val.txt").is_file():
        return "all"
    return "train" if training else "val"


def resolve_root(root: PathLike) -> Path:
    """``synthetic`` names the built-in generated dataset (made and cached on first use)."""
    if str(root) == SYNTHETIC and not Path(root).exists():
        from fcn_edge.data.synthetic import ensure_dataset

        return ensure_dataset()
    return Path(root)


def open_dataset(
    root: PathLike,
    split: Optional[str] = None,
    fmt: str = "auto",
    class_names: Optional[Sequence[str]] = None,
    training: bool = False,
) -> SegmentationDataset:
    """Open the dataset at ``root`` (or ``"synthetic"``). ``split`` defaults to val (train
    when ``training``), or to every image of a folder pair without split lists."""
    if fmt not in FORMATS:
        raise DataError(f"unknown dataset format {fmt!r}; choose one of {FORMATS}")
    root = resolve_root(root)
    if fmt == "auto":
        fmt = detect_format(root)
    split = split or default_split(root, fmt, training)
    if fmt == "voc":
        return open_voc(root, split, class_names)
    if fmt == "cityscapes":
        if class_names is not None:
            raise DataError("Cityscapes has a fixed class list (19 train ids); do not pass class names")
        return open_cityscapes(root, split)
    return open_folder(root, split, class_names)


@dataclass(frozen=True)
class DatasetSpec:
    """Which labelled images a command reads: the CLI's ``--data``, ``--split``,
    ``--data-format`` and ``--limit``, as evaluate, compare and benchmark all take them."""

    root: str = SYNTHETIC  # a dataset folder, or "synthetic"
    split: Optional[str] = None  # None: val (every image of a folder pair without split lists)
    data_format: str = "auto"
    limit: Optional[int] = None  # only the first N images of the split

    def __post_init__(self) -> None:
        if self.data_format not in FORMATS:
            raise DataError(f"unknown dataset format {self.data_format!r}; choose one of {FORMATS}")
        if self.limit is not None and self.limit < 1:
            raise DataError(f"dataset limit must be >= 1 image, got {self.limit}")

    def open(self, class_names: Optional[Sequence[str]] = None) -> SegmentationDataset:
        return open_dataset(self.root, self.split, self.data_format, class_names)

    def count(self, dataset: SegmentationDataset) -> int:
        """How many of ``dataset``'s images to use."""
        return len(dataset) if self.limit is None else min(self.limit, len(dataset))


DataLike = Union[DatasetSpec, PathLike]


def dataset_spec(data: DataLike) -> DatasetSpec:
    """``data`` as a DatasetSpec: a spec is kept, a path (or "synthetic") is its root."""
    return data if isinstance(data, DatasetSpec) else DatasetSpec(str(data))


__all__ = [
    "FORMATS", "SYNTHETIC", "DataLike", "DatasetSpec", "dataset_spec", "default_split", "detect_format",
    "open_dataset", "resolve_root",
]
