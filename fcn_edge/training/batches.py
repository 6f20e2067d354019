"""The training stream: a deterministic sequence of augmented samples.

Global sample number ``g`` is image ``perm(epoch)[g % N]`` with ``epoch = g // N``, and its
augmentation draws from ``default_rng([seed, g])``. The stream therefore depends on the
seed alone: not on worker count, and not on whether the run was interrupted and resumed.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

import numpy as np

from fcn_edge.data.augment import AugmentConfig, augment
from fcn_edge.data.dataset import SegmentationDataset


def to_network_input(image_bgr: np.ndarray, mean, std) -> np.ndarray:
    """(H, W, 3) BGR uint8 -> (3, H, W) float32 normalised RGB, as ModelMeta describes."""
    rgb = image_bgr[..., ::-1].astype(np.float32) / 255.0
    rgb = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


class TrainStream:
    """Map-style view of the stream for torch's DataLoader: item ``g`` is global sample ``g``."""

    def __init__(self, dataset: SegmentationDataset, augment_cfg: AugmentConfig, seed: int, mean, std):
        self.dataset = dataset
        self.augment_cfg = augment_cfg
        self.seed = seed
        self.mean, self.std = mean, std
        self._perms = {}

    def image_index(self, g: int) -> int:
        n = len(self.dataset)
        epoch = g // n
        perm = self._perms.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, 1_000_003, epoch]).permutation(n)
            self._perms = {epoch: perm}  # keep one epoch: the stream only moves forward
        return int(perm[g % n])

    def __len__(self) -> int:  # DataLoader asks; the stream itself is unbounded
        return 2**62

    def __getitem__(self, g: int) -> Tuple[np.ndarray, np.ndarray]:
        sample = self.dataset[self.image_index(g)]
        rng = np.random.default_rng([self.seed, g])
        image, mask = augment(sample.image, sample.mask, rng, self.augment_cfg)
        return to_network_input(image, self.mean, self.std), mask.astype(np.int64)


def batch_indices(start_iter: int, iters: int, batch_size: int) -> Iterator[List[int]]:
    """Global sample numbers of each batch from ``start_iter`` to ``iters``."""
    for it in range(start_iter, iters):
        yield list(range(it * batch_size, (it + 1) * batch_size))
