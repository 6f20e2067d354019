"""Datasets for training, calibration and evaluation; torch-free.

Readers for PASCAL VOC, Cityscapes (label ids -> train ids) and a plain images/ + masks/
folder pair all return a :class:`SegmentationDataset` of BGR uint8 images and uint8 index
masks. :mod:`fcn_edge.data.synthetic` generates the built-in street-scene set and clip;
:mod:`fcn_edge.data.augment` makes training views with numpy and OpenCV.
"""

from fcn_edge.data.dataset import Sample, SamplePaths, SegmentationDataset
from fcn_edge.data.formats import FORMATS, SYNTHETIC, DatasetSpec, dataset_spec, detect_format, open_dataset
from fcn_edge.data.images import read_image, read_label_png, write_image, write_label_png

__all__ = [
    "FORMATS",
    "SYNTHETIC",
    "DatasetSpec",
    "Sample",
    "SamplePaths",
    "SegmentationDataset",
    "dataset_spec",
    "detect_format",
    "open_dataset",
    "read_image",
    "read_label_png",
    "write_image",
    "write_label_png",
]
