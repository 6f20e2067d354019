"""Read a finished video file back before it is renamed into place.

OpenCV's VideoWriter can fail without raising (a full disk, a file-size limit, an encoder
error; ``write`` returns False in OpenCV 5 and nothing in 4.x) and still leave a file
behind, such as an MP4 without its index ("moov atom not found"). So a sink calls
:func:`video_file_problem` on the temporary file and renames it only when the file opens,
its container holds every frame written, and the last of them decodes.

The check reads through OpenCV's FFmpeg backend where this cv2 has it (pip wheels,
Debian's and JetPack's builds), which reads what the FFmpeg and GStreamer writers write;
it runs on a helper thread with a time limit, because a GStreamer capture can block on a
damaged file. Seeking to the last frame costs a few milliseconds, whatever the length.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from fcn_edge.optional import require
from fcn_edge.video import capabilities

CHECK_TIMEOUT_S = 60.0


def _problem(path: Path, frames: int) -> Optional[str]:
    cv2 = require("cv2", "checking a written video")
    api = cv2.CAP_FFMPEG if capabilities.cv2_has_ffmpeg() else cv2.CAP_ANY
    capture = cv2.VideoCapture(str(path), api)
    try:
        if not capture.isOpened():
            return "does not open as a video (its container was not finalised)"
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if 0 < count < frames:
            return f"holds {count} of the {frames} frames written"
        if frames > 1:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
        ok, image = capture.read()
        if not ok or image is None:
            return f"does not decode its last frame (frame {frames} of {frames})"
        return None
    finally:
        capture.release()


def video_file_problem(path: Path, frames: int, timeout_s: float = CHECK_TIMEOUT_S) -> Optional[str]:
    """None when ``path`` opens as a video whose last frame (number ``frames``) decodes,
    else what is wrong, to follow the file's name in a message ('does not open as a video')."""
    if not path.is_file() or path.stat().st_size == 0:
        return "is empty: the writer produced no data"
    outcome = {}

    def check() -> None:
        try:
            outcome["problem"] = _problem(path, frames)
        except Exception as exc:  # noqa: BLE001 - a cv2 error while reading back is the answer
            outcome["problem"] = f"cannot be read back ({exc})"

    thread = threading.Thread(target=check, name="fcn-edge-video-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return f"could not be read back within {timeout_s:g} s"
    return outcome["problem"]
