"""GStreamer pipeline strings for OpenCV's CAP_GSTREAMER, in one place.

Capture pipelines end in ``appsink drop=true max-buffers=1`` for live sources, so a slow
consumer always gets the newest frame instead of a backlog, and in BGR, which is what
cv2 and the runtime take. Writer pipelines start at ``appsrc`` (cv2 pushes BGR frames).
"""

from __future__ import annotations

from typing import Optional, Tuple

LIVE_APPSINK = "appsink drop=true max-buffers=1 sync=false"


def csi_camera(sensor_id: int, size: Tuple[int, int] = (720, 1280), fps: int = 30, flip: int = 0) -> str:
    """A Jetson CSI camera through nvarguscamerasrc -> NVMM NV12 -> nvvidconv -> BGR."""
    height, width = size
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! "
        f"videoconvert ! video/x-raw,format=BGR ! {LIVE_APPSINK}"
    )


def v4l2_camera(device: str, size: Optional[Tuple[int, int]] = None, fps: Optional[int] = None) -> str:
    caps = ["video/x-raw"]
    if size:
        caps += [f"width={size[1]}", f"height={size[0]}"]
    if fps:
        caps.append(f"framerate={fps}/1")
    return (
        f"v4l2src device={device} ! {','.join(caps)} ! videoconvert ! "
        f"video/x-raw,format=BGR ! {LIVE_APPSINK}"
    )


def network_stream(url: str, latency_ms: int = 200) -> str:
    """RTSP via rtspsrc (decodebin picks nvv4l2decoder on a Jetson); HTTP via souphttpsrc."""
    if url.lower().startswith("rtsp"):
        # TCP: a cut connection errors out at once (an EOS for cv2, so the source reconnects)
        # instead of UDP's silent stall, and it passes NAT and firewalls.
        head = f"rtspsrc location={url} latency={latency_ms} protocols=tcp tcp-timeout=5000000 ! decodebin"
    else:
        head = f"souphttpsrc location={url} is-live=true ! decodebin"
    return f"{head} ! videoconvert ! video/x-raw,format=BGR ! {LIVE_APPSINK}"


def h264_encoder(hardware: bool, bitrate_kbps: int, keyframe_interval: int) -> str:
    """nvv4l2h264enc (Jetson, bits/s) or x264enc (software, kbit/s), up to H.264 caps."""
    if hardware:
        return (
            "videoconvert ! video/x-raw,format=BGRx ! nvvidconv ! "
            "video/x-raw(memory:NVMM),format=NV12 ! "
            f"nvv4l2h264enc bitrate={bitrate_kbps * 1000} iframeinterval={keyframe_interval} "
            "insert-sps-pps=true ! h264parse"
        )
    return (
        "videoconvert ! video/x-raw,format=I420 ! "
        f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} "
        f"key-int-max={keyframe_interval} ! video/x-h264,profile=baseline ! h264parse"
    )


_MUXERS = {".mp4": "mp4mux", ".mov": "qtmux", ".mkv": "matroskamux", ".avi": "avimux"}


def file_writer(path: str, suffix: str, hardware: bool, bitrate_kbps: int = 8000, keyframe_interval: int = 30) -> str:
    mux = _MUXERS[suffix]
    return f"appsrc ! {h264_encoder(hardware, bitrate_kbps, keyframe_interval)} ! {mux} ! filesink location={path}"


def network_writer(url: str, hardware: bool, bitrate_kbps: int = 4000, keyframe_interval: int = 30) -> str:
    """rtsp://server/path: RECORD to an RTSP server (rtspclientsink); rtp://host:port: RTP/UDP."""
    encode = h264_encoder(hardware, bitrate_kbps, keyframe_interval)
    if url.lower().startswith("rtsp"):
        return f"appsrc is-live=true ! {encode} ! rtspclientsink location={url}"
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    return (
        f"appsrc is-live=true ! {encode} ! rtph264pay config-interval=1 pt=96 ! "
        f"udpsink host={host or '127.0.0.1'} port={port or 5000} sync=false"
    )
