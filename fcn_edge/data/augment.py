"""Train-time augmentation in numpy/OpenCV: random scale, crop, flip, photometric jitter.

The geometry mirrors what the runtime does at inference: the frame is first stretched to
the model's input size (``base_size``, ModelMeta's resize_mode "stretch"), then scaled by
a random factor and cropped back to the input size. So the network trains on objects at
the scales it will see, plus jitter. Masks use nearest-neighbour resizing and are padded
with the ignore index, so padding never counts as a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

Size = Tuple[int, int]
PAD_BGR = (104, 116, 124)  # ImageNet mean in BGR: padding that normalises to ~0


@dataclass(frozen=True)
class AugmentConfig:
    crop_size: Size = (256, 320)  # (H, W) of the training crops
    base_size: Optional[Size] = (256, 320)  # stretch frames to this first; None keeps them
    scale_range: Tuple[float, float] = (0.75, 1.5)
    hflip: bool = True
    brightness: float = 0.3  # multiplicative, +-
    contrast: float = 0.3
    saturation: float = 0.3
    hue_degrees: float = 6.0
    ignore_index: int = 255


def resize_pair(image: np.ndarray, mask: np.ndarray, size: Size) -> Tuple[np.ndarray, np.ndarray]:
    """Resize an image (bilinear) and its mask (nearest) to ``size`` (H, W)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, mask
    return (
        cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR),
        cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST),
    )


def random_scale_crop(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> Tuple[np.ndarray, np.ndarray]:
    if cfg.base_size is not None:
        image, mask = resize_pair(image, mask, cfg.base_size)
    scale = rng.uniform(*cfg.scale_range)
    h = max(1, int(round(image.shape[0] * scale)))
    w = max(1, int(round(image.shape[1] * scale)))
    image, mask = resize_pair(image, mask, (h, w))
    ch, cw = cfg.crop_size
    pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
    if pad_h or pad_w:
        top, left = int(rng.integers(0, pad_h + 1)), int(rng.integers(0, pad_w + 1))
        border = (top, pad_h - top, left, pad_w - left)
        image = cv2.copyMakeBorder(image, *border, cv2.BORDER_CONSTANT, value=PAD_BGR)
        mask = cv2.copyMakeBorder(mask, *border, cv2.BORDER_CONSTANT, value=cfg.ignore_index)
    y = int(rng.integers(0, image.shape[0] - ch + 1))
    x = int(rng.integers(0, image.shape[1] - cw + 1))
    return image[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]


def photometric_jitter(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue changes, as a camera or the weather makes them."""
    out = image.astype(np.float32)
    if cfg.brightness:
        out *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if cfg.contrast:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.saturation:
        grey = out.mean(axis=2, keepdims=True)
        out = (out - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    out = np.clip(out, 0, 255).astype(np.uint8)
    if cfg.hue_degrees:
        shift = int(round(rng.uniform(-cfg.hue_degrees, cfg.hue_degrees) / 2))  # OpenCV hue: 0..179
        if shift:
            hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return out


def augment(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> Tuple[np.ndarray, np.ndarray]:
    """One random training view of (BGR image, mask): both come back at ``cfg.crop_size``."""
    image, mask = random_scale_crop(image, mask, rng, cfg)
    if cfg.hflip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    image = photometric_jitter(np.ascontiguousarray(image), rng, cfg)
    return image, np.ascontiguousarray(mask)
