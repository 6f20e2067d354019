#!/usr/bin/env python3
"""What the browser page costs: JPEG encoding per frame, pipeline FPS with 0, 1 and 3
viewers (and a stalled one), and the glass-to-glass delay.

    python tools/bench_web.py                        # default model, synthetic clip, all three
    python tools/bench_web.py --window 10 --repeats 3 --threads 1
    python tools/bench_web.py --skip-browser         # without Chromium (no glass-to-glass)

1. Encoding: ``cv2.imencode`` of the clip's drawn overlays (640x480), at the page's JPEG
   quality, timed frame by frame; and the mean the page's own encoder reported during (2).
2. FPS: one ``fcn-edge run CLIP --input-loop -1 -o http://127.0.0.1:0/`` process; the viewers
   are MJPEG readers in this process (another process, as a remote browser would be), each
   reading as fast as frames come. Per condition: connect the viewers, let it settle, count
   the frames the pipeline wrote over the same wall-clock window (its /api/stats), disconnect.
   Conditions are interleaved over the repeats so that load drift from other processes hits
   each alike; the median per condition is reported with its ratio to no viewer. Beside
   it, the run's CPU time per frame (user + system, from /proc) over the same window:
   what the page costs the device, and far less disturbed by other processes than FPS.
3. Glass-to-glass: a live source paced at the clip's rate draws the wall-clock time into
   each frame as it is captured (40 black/white 8x8 blocks: milliseconds, plus a guard);
   the page runs with alpha 0 so the blocks come through the overlay untouched. Headless
   Chromium shows the page; a script in it decodes the blocks of the picture on screen on
   every animation frame and records Date.now() minus the stamp when a new frame appears
   ("shown"). An MJPEG reader here decodes the stamp of each part as it arrives
   ("received"). Same machine, same clock.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' page clients

STAMP_BITS = 40
GUARD = (1, 0, 1, 1, 0, 1, 0, 0)  # marks a stamp, so other pixels are never read as one
BLOCK = 8


# -- 1. encoding --------------------------------------------------------------------------------
def encoding_cost(frames: List[np.ndarray], meta, quality: int) -> Dict[str, float]:
    import cv2

    from fcn_edge.runtime import load_segmenter
    from fcn_edge.runtime.render import RenderConfig, Renderer

    renderer = Renderer(meta.palette, RenderConfig(), meta.class_names, stream=True)
    with load_segmenter() as segmenter:
        pictures = [renderer(f, segmenter.segment(f).mask) for f in frames]
    times, sizes = [], []
    for picture in pictures * 3:
        t0 = time.perf_counter()
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        times.append((time.perf_counter() - t0) * 1e3)
        sizes.append(len(data))
    return {"size": f"{pictures[0].shape[1]}x{pictures[0].shape[0]}", "quality": quality,
            "median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)),
            "kb": statistics.mean(sizes) / 1024}


# -- 2. FPS by viewers --------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_run(clip: Path, threads: Optional[int], extra=()) -> (subprocess.Popen, str):
    command = [sys.executable, "-m", "fcn_edge", "run", str(clip), "--input-loop", "-1", "-o", "http://127.0.0.1:0/",
               "--no-stats", *extra] + (["--threads", str(threads)] if threads else [])
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith("page: "):
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
            return process, line.split()[1]
    raise SystemExit(f"fcn-edge run ended without serving the page (rc {process.wait()})")


def fps_by_viewers(clip: Path, threads: Optional[int], window: float, repeats: int, settle: float) -> Dict[str, object]:
    from web_clients import MjpegReader, StalledClient, stats

    conditions = {"0 viewers": (0, False), "1 viewer": (1, False), "3 viewers": (3, False), "3 viewers + 1 stalled": (3, True)}
    results: Dict[str, List[float]] = {name: [] for name in conditions}
    cpu: Dict[str, List[float]] = {name: [] for name in conditions}
    encode: Dict[str, List[float]] = {name: [] for name in conditions}
    process, url = start_run(clip, threads)
    try:
        time.sleep(settle)
        for repeat in range(repeats):
            for name, (count, stall) in conditions.items():
                readers = [MjpegReader(url) for _ in range(count)]
                for reader in readers:
                    reader.start()
                stalled = StalledClient(url) if stall else None
                time.sleep(settle)
                first, cpu0 = stats(url)["streams"]["0"], cpu_seconds(process.pid)
                t0 = time.monotonic()
                time.sleep(window)
                last, cpu1 = stats(url)["streams"]["0"], cpu_seconds(process.pid)
                elapsed = time.monotonic() - t0
                for reader in readers:
                    reader.stop()
                if stalled is not None:
                    stalled.close()
                frames = last["frames_out"] - first["frames_out"]
                fps = frames / elapsed
                results[name].append(fps)
                cpu[name].append((cpu1 - cpu0) * 1e3 / max(1, frames))
                if last["view"]["encode_ms"] is not None and count:
                    encode[name].append(last["view"]["encode_ms"])
                print(f"  repeat {repeat + 1}: {name:<22} {fps:6.2f} FPS, {cpu[name][-1]:5.1f} CPU ms/frame"
                      + (f"   (readers got {[r.frames for r in readers]} frames)" if readers else ""), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    base = statistics.median(results["0 viewers"])
    return {name: {"fps": values, "median": statistics.median(values), "ratio": statistics.median(values) / base,
                   "cpu_ms_per_frame": statistics.median(cpu[name]),
                   "encode_ms": statistics.median(encode[name]) if encode[name] else None}
            for name, values in results.items()}


# -- 3. glass to glass --------------------------------------------------------------------------
def draw_stamp(frame: np.ndarray, t_ms: int) -> None:
    bits = list(GUARD) + [(t_ms >> i) & 1 for i in range(STAMP_BITS)]
    y = frame.shape[0] - 2 * BLOCK  # on the 8x8 JPEG grid, clear of the bottom edge
    for i, bit in enumerate(bits):
        frame[y:y + BLOCK, i * BLOCK:(i + 1) * BLOCK] = 255 if bit else 0


def read_stamp(picture: np.ndarray) -> Optional[int]:
    """The stamp :func:`draw_stamp` drew, or None where the guard is not there."""
    y = picture.shape[0] - 2 * BLOCK + BLOCK // 2
    bits = [int(picture[y, i * BLOCK + BLOCK // 2].mean() > 127) for i in range(len(GUARD) + STAMP_BITS)]
    if tuple(bits[:len(GUARD)]) != GUARD:
        return None
    return sum(bit << i for i, bit in enumerate(bits[len(GUARD):]))


DECODE_JS = """
const guard = arguments[0], bits = arguments[1], block = arguments[2];
window.__delays = [];
const img = document.querySelector('img.video');
const canvas = document.createElement('canvas');
const context = canvas.getContext('2d', {willReadFrequently: true});
let last = -1;
function tick() {
  if (img.naturalWidth) {
    if (canvas.width !== img.naturalWidth) { canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; }
    context.drawImage(img, 0, 0);
    const y = img.naturalHeight - 2 * block + block / 2;
    const strip = context.getImageData(0, y, (guard.length + bits) * block, 1).data;
    const bit = (i) => strip[4 * (i * block + block / 2)] > 127 ? 1 : 0;
    if (guard.every((g, i) => bit(i) === g)) {
      let stamp = 0;
      for (let i = 0; i < bits; i++) stamp += bit(guard.length + i) * 2 ** i;
      if (stamp !== last) {
        last = stamp;
        window.__delays.push(Date.now() % 2 ** bits - stamp);
      }
    }
  }
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);
"""


class StampedClip:
    """A live source: the clip's frames at ``fps``, looped, each stamped with the time it is read."""

    def __init__(self, frames: List[np.ndarray], fps: float):
        self.frames, self.period = frames, 1.0 / fps
        self.uri, self.is_live, self.fps = "stamped-clip://", True, fps
        self._next = 0
        self._due = time.monotonic()

    def open(self) -> None:
        self._due = time.monotonic()

    def read(self) -> np.ndarray:
        delay = self._due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._due = max(self._due + self.period, time.monotonic() - self.period)
        frame = self.frames[self._next % len(self.frames)].copy()
        self._next += 1
        draw_stamp(frame, int(time.time() * 1000) % 2 ** STAMP_BITS)
        return frame

    def close(self) -> None:
        pass


def glass_to_glass(frames: List[np.ndarray], fps: float, seconds: float, threads: Optional[int]) -> Dict[str, object]:
    import cv2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from fcn_edge.runtime import LoadOptions, RenderConfig
    from fcn_edge.video import NullSink, PipelineConfig, VideoPipeline
    from fcn_edge.video.web import ViewAddress, ViewConfig, open_page
    from web_clients import MjpegReader

    segmenter = LoadOptions(threads=threads).load()
    pipeline = VideoPipeline(StampedClip(frames, fps), segmenter, NullSink(),
                             PipelineConfig(render=RenderConfig(alpha=0.0), show_stats=False))
    page = open_page(ViewConfig(ViewAddress("127.0.0.1", 0)), {"0": pipeline})
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    reader = MjpegReader(page.url, keep=True)
    try:
        driver.get(page.url)
        time.sleep(2.0)
        driver.execute_script(DECODE_JS, list(GUARD), STAMP_BITS, BLOCK)
        reader.start()
        time.sleep(seconds)
        shown = [d for d in driver.execute_script("return window.__delays") if 0 <= d < 60_000]
        received = []
        for arrived, jpeg in reader.arrivals:
            stamp = read_stamp(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
            if stamp is not None:
                received.append(int(arrived * 1000) % 2 ** STAMP_BITS - stamp)
        summary = pipeline.stages.summary()
    finally:
        reader.stop()
        driver.quit()
        pipeline.request_stop()
        runner.join(10)
        page.close()
        segmenter.close()

    def describe(values):
        return {"count": len(values), "median_ms": statistics.median(values) if values else None,
                "p90_ms": float(np.percentile(values, 90)) if values else None}

    return {"source_fps": fps, "shown": describe(shown), "received": describe(received),
            "pipeline_end_to_end_ms": summary["end_to_end"].p50 if "end_to_end" in summary else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="clip (default: the synthetic street clip)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--window", type=float, default=8.0, help="seconds counted per FPS condition (default 8)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after connecting before counting (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the conditions (default 3)")
    parser.add_argument("--g2g-seconds", type=float, default=15.0, help="glass-to-glass sampling time (default 15)")
    parser.add_argument("--skip-browser", action="store_true", help="no Chromium: skip the glass-to-glass delay")
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args()

    from fcn_edge.artifacts import read_onnx_meta
    from fcn_edge.data.synthetic import ensure_clip
    from fcn_edge.video import open_source
    from fcn_edge.video.web import ViewConfig
    from fcn_edge.weights import default_onnx

    clip = Path(args.input) if args.input else ensure_clip(progress=False)
    source = open_source(str(clip), reconnect=None)
    frames = []
    while len(frames) < 150 and (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    meta = read_onnx_meta(default_onnx())
    report: Dict[str, object] = {"clip": str(clip), "threads": args.threads}

    report["encoding"] = enc = encoding_cost(frames[:40], meta, ViewConfig().jpeg_quality)
    print(f"JPEG encoding ({enc['size']}, quality {enc['quality']}): median {enc['median_ms']:.2f} ms, "
          f"p90 {enc['p90_ms']:.2f} ms, {enc['kb']:.0f} kB per frame", flush=True)

    print(f"pipeline FPS by viewers ({args.repeats} rounds of {args.window:g} s windows):", flush=True)
    report["fps"] = fps = fps_by_viewers(clip, args.threads, args.window, args.repeats, args.settle)
    for name, row in fps.items():
        encode = f", page encoder {row['encode_ms']:.2f} ms/frame" if row["encode_ms"] is not None else ""
        print(f"  {name:<22} median {row['median']:6.2f} FPS  ({row['ratio']:.3f} x no viewer), "
              f"{row['cpu_ms_per_frame']:.1f} CPU ms/frame{encode}")

    if not args.skip_browser:
        report["glass_to_glass"] = g2g = glass_to_glass(frames, 15.0, args.g2g_seconds, args.threads)
        for key, where in (("shown", "shown in Chromium"), ("received", "received by a socket client")):
            row = g2g[key]
            print(f"glass to glass, {where}: median {row['median_ms']:.0f} ms, p90 {row['p90_ms']:.0f} ms over {row['count']} frames")
        print(f"  (pipeline capture -> written, p50: {g2g['pipeline_end_to_end_ms']:.0f} ms; source {g2g['source_fps']:g} fps, live)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
