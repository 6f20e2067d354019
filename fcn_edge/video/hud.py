"""The statistics overlay: FPS and per-stage latency drawn in the frame's top-left corner."""

from __future__ import annotations

from typing import List, Optional

import cv2
import numpy as np

from fcn_edge.video.stats import RateMeter, StageRecorder


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def hud_lines(rate: RateMeter, stages: StageRecorder, dropped: int, live: bool) -> List[str]:
    fps = rate.rate
    lines = [f"{fps:.1f} FPS" if fps is not None else "-- FPS"]
    lines.append(
        "infer {} ms (pre {} | net {} | post {})".format(
            _ms(stages.recent_mean("inference")),
            _ms(stages.recent_mean("preprocess")),
            _ms(stages.recent_mean("network")),
            _ms(stages.recent_mean("decode")),
        )
    )
    lines.append(f"render {_ms(stages.recent_mean('render'))} ms  e2e {_ms(stages.recent_mean('end_to_end'))} ms")
    if live:
        lines.append(f"dropped {dropped}")
    return lines


def draw_hud(image: np.ndarray, lines: List[str]) -> None:
    """Draw ``lines`` in place on a dark box; the scale follows the image height."""
    scale = max(0.4, min(1.2, image.shape[0] / 720.0 * 0.7))
    thickness = 1 if scale < 0.8 else 2
    line_h = int(22 * scale / 0.6)
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines)
    box_w = min(image.shape[1], width + 12)
    box_h = min(image.shape[0], line_h * len(lines) + 8)
    region = image[:box_h, :box_w]
    region //= 3  # darken under the text without a second full-frame buffer
    for i, line in enumerate(lines):
        y = 4 + line_h * (i + 1) - line_h // 4
        cv2.putText(image, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
