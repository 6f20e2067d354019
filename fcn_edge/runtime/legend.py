"""The class legend: a semi-transparent panel of colour swatches and class names.

Names and colours come from ModelMeta, so an overlay explains itself. The panel goes in
the picture corner where it hides the least: the corner whose pixels under the panel
hold the fewest pixels outside that region's majority class (it covers a patch of road
or sky rather than a person). In a video stream it stays in its corner unless another one
hides clearly less, so it does not jump from frame to frame, and it leaves the top-left
corner to the statistics overlay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

LEGEND_CLASSES = ("present", "all")
# Preference among equally good corners; top-left last (the video HUD lives there).
CORNERS = ("top-right", "bottom-right", "bottom-left", "top-left")
STREAM_CORNERS = CORNERS[:3]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MIN_SCALE = 0.3
_STICKY_MARGIN = 0.05  # another corner must hide 5 % of the panel's area less to move there


@dataclass(frozen=True)
class LegendLayout:
    """Sizes in pixels of a panel listing ``rows`` (class indices; -1 is a '+N more' row)."""

    rows: Tuple[int, ...]
    more: int  # classes left out for lack of height
    scale: float
    thickness: int
    row_height: int
    swatch: int
    pad: int
    width: int
    height: int


class Legend:
    """Draws the legend of one model's classes; ``hidden`` (the ignored class) is never listed."""

    def __init__(self, lut: np.ndarray, class_names: Sequence[str], hidden: Optional[int] = None,
                 which: str = "present", sticky: bool = False):
        self.lut = lut  # BGR, from render.palette_lut
        self.class_names = tuple(class_names)
        self.hidden = hidden
        self.which = which
        self.sticky = sticky
        self.corners = STREAM_CORNERS if sticky else CORNERS
        self.corner: Optional[str] = None  # where the last panel went

    # -- what to list ----------------------------------------------------------------------
    def classes(self, mask: np.ndarray) -> List[int]:
        """Class indices to list, in class order."""
        count = len(self.class_names)
        present = range(count) if self.which == "all" else np.flatnonzero(_histogram(mask)[:count])
        return [int(c) for c in present if c != self.hidden]

    # -- how big ------------------------------------------------------------------------------
    def layout(self, classes: Sequence[int], height: int, width: int) -> Optional[LegendLayout]:
        """The panel for ``classes`` in a height x width picture; None when nothing fits."""
        if not classes:
            return None
        scale = float(np.clip(height / 900.0, 0.35, 1.0))
        while True:
            thickness = 1 if scale < 0.8 else 2
            (_, text_h), baseline = cv2.getTextSize("Ag", _FONT, scale, thickness)
            row_height = int(round((text_h + baseline) * 1.5))
            swatch = text_h + baseline
            pad = max(3, row_height // 4)
            margin = pad
            fit = (height - 2 * margin - 2 * pad) // row_height  # rows that fit the picture's height
            if fit < 1:
                return None
            rows = list(classes)
            more = 0
            if len(rows) > fit:  # the last row that fits says how many are left out
                more = len(rows) - (fit - 1)
                rows = rows[: fit - 1] + [-1]
            labels = [self._label(c, more) for c in rows]
            text_w = max(cv2.getTextSize(label, _FONT, scale, thickness)[0][0] for label in labels)
            panel_w = pad + swatch + pad + text_w + pad
            if panel_w <= width - 2 * margin or scale <= _MIN_SCALE:
                panel_h = 2 * pad + len(rows) * row_height
                return LegendLayout(tuple(rows), more, scale, thickness, row_height, swatch, pad,
                                    min(panel_w, width - 2 * margin), panel_h)
            scale = max(_MIN_SCALE, scale * (width - 2 * margin) / panel_w)

    def _label(self, index: int, more: int) -> str:
        return f"+{more} more" if index < 0 else self.class_names[index]

    # -- where ---------------------------------------------------------------------------------
    def place(self, mask: np.ndarray, panel_h: int, panel_w: int, margin: int) -> Tuple[int, int]:
        """(top, left) of the panel, in the corner where it hides the least of ``mask``."""
        height, width = mask.shape[:2]
        costs = {}
        for corner in self.corners:
            top, left = _origin(corner, height, width, panel_h, panel_w, margin)
            region = mask[top : top + panel_h, left : left + panel_w]
            costs[corner] = int(region.size - _histogram(region).max()) if region.size else 0
        best = min(self.corners, key=lambda c: costs[c])  # min keeps the first of equals
        if self.sticky and self.corner in costs:
            if costs[self.corner] <= costs[best] + _STICKY_MARGIN * panel_h * panel_w:
                best = self.corner
        self.corner = best
        return _origin(best, height, width, panel_h, panel_w, margin)

    # -- drawing ------------------------------------------------------------------------------
    def draw(self, picture: np.ndarray, mask: np.ndarray) -> None:
        """Draw the legend of ``mask``'s classes onto ``picture`` (same height and width) in place."""
        height, width = picture.shape[:2]
        layout = self.layout(self.classes(mask), height, width)
        if layout is None:
            return
        top, left = self.place(mask, layout.height, layout.width, layout.pad)
        panel = picture[top : top + layout.height, left : left + layout.width]
        panel //= 3  # darken under the panel: the frame still shows through
        text_colour = (255, 255, 255)
        for i, index in enumerate(layout.rows):
            y = top + layout.pad + i * layout.row_height
            x = left + layout.pad
            text_y = y + (layout.row_height + layout.swatch) // 2 - layout.row_height // 8
            if index >= 0:
                s0 = (x, y + (layout.row_height - layout.swatch) // 2)
                s1 = (s0[0] + layout.swatch - 1, s0[1] + layout.swatch - 1)
                colour = tuple(int(v) for v in self.lut[index])
                cv2.rectangle(picture, s0, s1, colour, cv2.FILLED)
                cv2.rectangle(picture, s0, s1, (200, 200, 200), 1)  # shows black classes too
            cv2.putText(picture, self._label(index, layout.more), (x + layout.swatch + layout.pad, text_y),
                        _FONT, layout.scale, text_colour, layout.thickness, cv2.LINE_AA)


def _histogram(mask: np.ndarray) -> np.ndarray:
    """Pixels per class; cv2.calcHist counts a uint8 mask (or a view of one) ~3x faster than np.bincount."""
    if mask.dtype == np.uint8:
        return cv2.calcHist([mask], [0], None, [256], [0, 256]).ravel()
    return np.bincount(mask.ravel())


def _origin(corner: str, height: int, width: int, panel_h: int, panel_w: int, margin: int) -> Tuple[int, int]:
    top = margin if corner.startswith("top") else max(0, height - margin - panel_h)
    left = margin if corner.endswith("left") else max(0, width - margin - panel_w)
    return top, left
