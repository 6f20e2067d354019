"""``fcn-edge run INPUT... [-o OUTPUT...]``: segment video streams, as jetson-inference's segnet does.

INPUT and OUTPUT are URIs (see fcn_edge.video.uri): files, image folders, /dev/videoN,
csi://0, rtsp://..., a GStreamer pipeline; OUTPUT a video file, an image folder,
display://0, rtsp://..., http://HOST:PORT/ (a live page for browsers), or null. Without -o
the result is shown in a window when a display exists; with --headless or no display it
is discarded (a benchmark run). --view [HOST]:PORT serves the page beside any output.

Several INPUTs run together with one model: give one -o per input, or one template such as
-o out/{name}.mp4 ({index}: 0, 1, ...; {name}: the source's file stem). A local model
segments the newest frames of all streams in one batched call; a triton:// model gets
concurrent requests, which the server batches. A stream that fails ends alone.

Exit codes: 0 complete; 1 failed at run time (a write failed, the source was lost for
good, any stream of several failed); 2 bad input or usage; 130 or 143 stopped by SIGINT or
SIGTERM (128 + signal) after the output was finalised. For a service (systemd), see the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fcn_edge.cli.args import (
    add_backend_options, add_input_size, add_json, add_model_option, add_out, add_visual_options,
    camera_size_wh, frame_rate, load_options, loop_count, model_or_default, non_negative_float, positive_float,
    positive_int, unit_weight, write_json_report,
)


def _smooth(text: str) -> float:
    """--smooth: the new frame's weight in the temporal EMA, in (0, 1]."""
    value = unit_weight(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"--smooth is the new frame's weight in (0, 1], got {text}")
    return value


def _view_address(text: str):
    from fcn_edge.errors import UsageError
    from fcn_edge.video.web.config import parse_view_address

    try:
        return parse_view_address(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run",
        help="segment a video file, camera or stream (pipelined capture -> inference -> output)",
        description=__doc__,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video file, image folder, /dev/video0, v4l2:///dev/video0, 0, csi://0, rtsp://..., http://..., or a GStreamer pipeline")
    add_out(p, "out.mp4/.avi/.mkv/.mov, an image folder or out/%%05d.png, display://0, rtsp://server/path, "
            "rtp://host:port, http://HOST:PORT/ (the live page), or null (default: a window if there is a "
            "display); one per INPUT, or one template with {index} or {name} for several",
            repeatable=True, metavar="OUTPUT")
    add_model_option(p)
    add_input_size(p, "network input size for a dynamic-shape model (default: the model's)")
    add_backend_options(p)
    add_visual_options(p, legend_default=False)
    vis = p.add_argument_group("overlay")
    vis.add_argument("--no-stats", action="store_true", help="do not draw FPS and latency on the frames (in a window, o toggles)")
    vis.add_argument("--smooth", type=_smooth, metavar="ALPHA", help="temporal EMA of class scores, weight of the new frame (e.g. 0.5); off by default")
    run = p.add_argument_group("run")
    run.add_argument("--max-frames", type=positive_int, help="stop after reading this many frames")
    run.add_argument("--headless", action="store_true", help="never open a window")
    run.add_argument("--sequential", action="store_true", help="no threads: read, infer, render, write one frame at a time (for comparison)")
    run.add_argument("--drop-frames", choices=("auto", "always", "never"), default="auto", help="drop stale frames: auto = for live sources only")
    run.add_argument("--input-loop", type=loop_count, default=0, metavar="N", help="play a file or image folder N more times; -1: until stopped (default 0)")
    run.add_argument("--reconnect-timeout", type=non_negative_float, default=60.0, metavar="S", help="give up on a lost live source after S seconds (0: do not reconnect; default 60)")
    add_json(run, "write the run summary as JSON to FILE ('-': stdout)")
    run.add_argument("--status", type=Path, metavar="FILE", help="keep a JSON health file (state, frames, drops, reconnects, "
                     "last error, uptime, fps) up to date, rewritten atomically every --status-interval seconds")
    run.add_argument("--status-interval", type=positive_float, default=5.0, metavar="S", help="seconds between status "
                     "file updates (default 5)")
    io = p.add_argument_group("capture and encoding")
    io.add_argument("--capture-backend", choices=("auto", "gstreamer", "ffmpeg", "v4l2"), default="auto", help="OpenCV capture backend (auto: GStreamer for cameras/streams when cv2 has it)")
    io.add_argument("--camera-size", type=camera_size_wh, metavar="WxH", help="ask the camera for this size, WIDTHxHEIGHT as cameras are described, e.g. 1280x720")
    io.add_argument("--camera-fps", type=positive_int, metavar="FPS", help="ask the camera for this frame rate")
    io.add_argument("--encoder", choices=("auto", "nvv4l2h264enc", "x264enc", "ffmpeg"), default="auto", help="video encoder (auto: nvv4l2h264enc on a Jetson, else OpenCV's FFmpeg)")
    io.add_argument("--bitrate", type=positive_int, default=8000, metavar="KBPS", help="H.264 bitrate in kbit/s (default 8000)")
    io.add_argument("--output-fps", type=frame_rate, metavar="FPS", help="frame rate written to the output (default: the source's, or 30)")
    page = p.add_argument_group("browser page: the stream, class legend, live statistics and controls")
    page.add_argument("--view", type=_view_address, metavar="[HOST]:PORT", help="serve the page at http://HOST:PORT/ beside the output "
                      "(HOST default 127.0.0.1; any other address needs --view-token)")
    page.add_argument("--view-token", metavar="TOKEN", help="required on every request to the page: open "
                      "http://HOST:PORT/?token=TOKEN once (default: $FCN_EDGE_VIEW_TOKEN)")
    p.add_argument("--list-backends", action="store_true", help="print what this OpenCV/GStreamer can do and exit")
    return p


def run(args) -> int:
    from fcn_edge.video import capabilities

    if args.list_backends:
        print(json.dumps(capabilities.describe(), indent=2))
        if not capabilities.cv2_has_gstreamer():
            print("GStreamer: not in this cv2; " + capabilities.gstreamer_install_hint(), file=sys.stderr)
        return 0

    from fcn_edge.errors import UsageError
    from fcn_edge.runtime import RenderConfig
    from fcn_edge.video import PipelineConfig, ReconnectPolicy, SinkOptions, SourceOptions
    from fcn_edge.video.job import VideoJob, VideoRunConfig
    from fcn_edge.video.web.config import ViewConfig, token_from_environment

    page_output = any(str(out).lower().startswith(("http://", "https://")) for out in args.out or ())
    if args.view_token and args.view is None and not page_output:
        raise UsageError("--view-token protects the browser page, and this run serves none: add --view [HOST]:PORT "
                         "or -o http://HOST:PORT/")

    config = VideoRunConfig(
        model=model_or_default(args.model),
        load=load_options(args),
        filter_mode=args.filter_mode,
        pipeline=PipelineConfig(
            render=RenderConfig(args.visualize, args.alpha, args.ignore_class, args.legend),
            show_stats=not args.no_stats, max_frames=args.max_frames,
            drop_frames={"auto": None, "always": True, "never": False}[args.drop_frames],
            smoothing_alpha=args.smooth,
        ),
        source=SourceOptions(backend=args.capture_backend, camera_size=args.camera_size, camera_fps=args.camera_fps),
        sink=SinkOptions(encoder=args.encoder, bitrate_kbps=args.bitrate),
        reconnect=ReconnectPolicy(give_up_after_s=args.reconnect_timeout) if args.reconnect_timeout > 0 else None,
        sequential=args.sequential,
        headless=args.headless,
        output_fps=args.output_fps,
        view=ViewConfig(args.view, token_from_environment(args.view_token)),
        input_loop=args.input_loop,
        status_path=args.status,
        status_interval_s=args.status_interval,
    )
    if len(args.inputs) > 1:
        return _run_streams(args, config)
    with VideoJob(args.inputs, args.out or (), config) as job:
        print(f"model: {job.segmenter.description}", file=sys.stderr)
        print(job.route, file=sys.stderr)
        _print_page(job.view)
        try:
            summary = job.run()
        finally:
            if job.summary is not None:  # also after an error: the output was finalised
                print(job.summary.format(), file=sys.stderr)
                write_json_report(args.json, job.summary.to_dict())
    if summary.error:
        print(f"fcn-edge run: error: {summary.error}", file=sys.stderr)
    return summary.exit_code  # 0; 1 on an error; 128 + signal when stopped by one (output finalised)


def _run_streams(args, config) -> int:
    """Several inputs: one model for all (local: one batched engine call; triton://: concurrent
    requests), one output each; exit status 1 when any stream ended on an error."""
    from fcn_edge.video.multistream import MultiStreamJob

    with MultiStreamJob(args.inputs, args.out or (), config) as job:
        print(f"model: {job.description}", file=sys.stderr)
        for route in job.routes:
            print(route, file=sys.stderr)
        _print_page(job.view)
        summary = job.run()
    print(summary.format(), file=sys.stderr)
    write_json_report(args.json, summary.to_dict())
    return 1 if summary.failed else 0


def _print_page(view) -> None:
    if view is not None:
        print(f"page: {view.url}" + (" (open it once with ?token=TOKEN)" if view.config.token else ""),
              file=sys.stderr, flush=True)
