"""A RealSense node process whose camera is an rs.software_device: synthetic colour and depth frames whose pixels
encode the frame number, injected at the configured rate (what the RealSense tests subscribe to)."""

import signal
import sys
import threading
import time

import numpy as np
import pyrealsense2 as rs

from hardware.nodes.config import RealSenseNodeConfig
from hardware.nodes.realsense_node import RealSenseNode
from hardware.ros import setup_logging

W, H, FPS, FRAMES = 64, 48, 30, 60


def stream(kind: object, fmt: object, bpp: int, uid: int) -> object:
    intr = rs.intrinsics()
    intr.width, intr.height, intr.ppx, intr.ppy, intr.fx, intr.fy = W, H, 31.5, 23.5, 60.0, 61.0
    intr.model, intr.coeffs = rs.distortion.brown_conrady, [0.1, -0.05, 0.0, 0.0, 0.01]
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = kind, 0, uid, W, H, FPS, bpp, fmt
    vs.intrinsics = intr
    return vs


def main() -> None:
    setup_logging()
    dev = rs.software_device()
    color, depth = dev.add_sensor("Color"), dev.add_sensor("Depth")
    cprof = color.add_video_stream(stream(rs.stream.color, rs.format.rgb8, 3, 0))
    dprof = depth.add_video_stream(stream(rs.stream.depth, rs.format.z16, 2, 1))
    depth.add_read_only_option(rs.option.depth_units, 0.001)
    dev.create_matcher(rs.matchers.default)
    sync = rs.syncer()
    color.open(cprof)
    depth.open(dprof)
    color.start(sync)
    depth.start(sync)
    cfg = RealSenseNodeConfig(camera="cam", width=W, height=H, fps=FPS, ros_args=tuple(sys.argv[1:]))
    node = RealSenseNode(cfg, lambda: sync.poll_for_frames() or None)
    keep = []

    def inject() -> None:
        time.sleep(2.0)  # let the subscriber match first
        for i in range(FRAMES):
            img = np.zeros((H, W, 3), np.uint8)
            img[:, :, 0], img[:, :, 1], img[:, :, 2] = i % 256, np.arange(W, dtype=np.uint8)[None, :], 7
            dep = np.full((H, W), 1000 + i, np.uint16)
            for sensor, prof, arr, bpp in ((color, cprof, img, 3), (depth, dprof, dep, 2)):
                f = rs.software_video_frame()
                f.pixels, f.bpp, f.stride = arr, bpp, W * bpp
                f.timestamp, f.domain, f.frame_number = time.time() * 1000, rs.timestamp_domain.system_time, i
                f.profile = prof.as_video_stream_profile()
                keep.append(arr)  # librealsense reads the pixels after on_video_frame returns
                sensor.on_video_frame(f)
            time.sleep(1.0 / FPS)

    threading.Thread(target=inject, daemon=True).start()
    signal.signal(signal.SIGINT, lambda *_: node.node.request_shutdown())
    node.node.spin()
    node.node.close()
    color.stop()
    depth.stop()


if __name__ == "__main__":
    main()
