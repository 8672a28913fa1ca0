"""The RealSense node: a pyrealsense2 pipeline (or any frame source, e.g. rs.software_device) -> Image/CameraInfo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hardware.nodes.config import RealSenseNodeConfig
from hardware.nodes.entry import run_cli, serve
from hardware.ros import SENSOR_DATA, Node, Publisher, create_node
from hardware.ros.convert import header, image_msg
from hardware.ros.msgs import CameraInfo, Image
from robot.core.errors import DeviceError

Poll = Callable[[], Any]
"""Returns the next rs.composite_frame, or None when none is ready (never blocks)."""


def _rs() -> Any:
    try:
        import pyrealsense2 as rs
    except ImportError as e:
        raise DeviceError("pyrealsense2 is not installed: pip install 'realrl[ros]' (and the Debian package "
                          "libusb-1.0-0)") from e
    return rs


def open_pipeline(config: RealSenseNodeConfig) -> tuple[Poll, Callable[[], None]]:
    """Start a pipeline on the camera `config.serial` names; returns (poll, stop). DeviceError when absent."""
    rs = _rs()
    serials = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
    if config.serial and config.serial not in serials:
        raise DeviceError(f"no RealSense with serial {config.serial!r}; connected: {serials or 'none'} "
                          "(check the USB 3 cable and `rs-enumerate-devices`)")
    if not config.serial and len(serials) != 1:
        raise DeviceError(f"{len(serials)} RealSense cameras connected {serials}: pass --serial to choose one"
                          if serials else "no RealSense camera connected (check the USB 3 cable)")
    cfg = rs.config()
    cfg.enable_device(config.serial or serials[0])
    cfg.enable_stream(rs.stream.color, config.width, config.height, rs.format.rgb8, config.fps)
    if config.depth:
        cfg.enable_stream(rs.stream.depth, config.width, config.height, rs.format.z16, config.fps)
    pipeline = rs.pipeline()
    try:
        pipeline.start(cfg)
    except RuntimeError as e:
        raise DeviceError(f"RealSense {config.serial or serials[0]} refused {config.width}x{config.height}@"
                          f"{config.fps}: {e}") from e

    def poll() -> Any:
        return pipeline.poll_for_frames() or None

    return poll, pipeline.stop


def camera_info_from(profile: Any, stamp: float, frame_id: str) -> CameraInfo:
    """CameraInfo from a pyrealsense2 video stream profile's intrinsics (Brown-Conrady as plumb_bob)."""
    intr = profile.as_video_stream_profile().get_intrinsics()
    fx, fy, cx, cy = intr.fx, intr.fy, intr.ppx, intr.ppy
    return CameraInfo(
        header=header(stamp, frame_id), height=intr.height, width=intr.width, distortion_model="plumb_bob",
        d=[float(c) for c in intr.coeffs], k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


class RealSenseNode:
    """Polls the frame source at twice the camera rate and publishes each new colour/depth frame with its
    CameraInfo, stamped with the frame's system-clock timestamp (node time when the camera has none)."""

    def __init__(self, config: RealSenseNodeConfig, poll: Poll, node: Node | None = None) -> None:
        self.config = config
        self.poll = poll
        self.node = node or create_node(f"{config.camera}", namespace=config.namespace, args=config.ros_args)
        n, cam = self.node, config.camera
        self.pub: dict[str, tuple[Publisher[Image], Publisher[CameraInfo]]] = {
            "color": (n.create_publisher(Image, f"{cam}/color/image_raw", SENSOR_DATA),
                      n.create_publisher(CameraInfo, f"{cam}/color/camera_info", SENSOR_DATA)),
        }
        if config.depth:
            self.pub["depth"] = (n.create_publisher(Image, f"{cam}/depth/image_rect_raw", SENSOR_DATA),
                                 n.create_publisher(CameraInfo, f"{cam}/depth/camera_info", SENSOR_DATA))
        self.published = {k: 0 for k in self.pub}
        self._rs = _rs()
        n.create_timer(0.5 / config.fps, self.tick)

    def tick(self) -> None:
        """Publish whatever the source has ready."""
        rs = self._rs
        frames = self.poll()
        if frames is None:
            return
        domain = frames.get_frame_timestamp_domain()
        stamp = (frames.get_timestamp() / 1000.0 if domain in (rs.timestamp_domain.system_time,
                                                                 rs.timestamp_domain.global_time)
                 else self.node.now())
        cam = self.config.camera
        for kind, frame, encoding in (("color", frames.get_color_frame(), "rgb8"),
                                      ("depth", frames.get_depth_frame(), "16UC1")):
            if not frame or kind not in self.pub:
                continue
            frame_id = f"{cam}_{kind}_optical_frame"
            pixels = np.asanyarray(frame.get_data())
            img_pub, info_pub = self.pub[kind]
            img_pub.publish(image_msg(pixels, stamp=stamp, frame_id=frame_id, encoding=encoding))
            info_pub.publish(camera_info_from(frame.profile, stamp, frame_id))
            self.published[kind] += 1

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM (the caller stops the camera)."""
        c = self.config
        self.node.logger.info("realsense node up: %s %dx%d@%d%s", c.serial or "(only camera)", c.width, c.height,
                              c.fps, " + depth" if c.depth else "")
        self.node.spin()
        self.node.close()


def run(config: RealSenseNodeConfig) -> None:
    """Entry point of `realrl node realsense`."""
    poll, stop = open_pipeline(config)
    try:
        serve(lambda: RealSenseNode(config, poll))
    finally:
        stop()


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.realsense_node [flags] [--ros-args ...]`."""
    run_cli(RealSenseNodeConfig, run, "realsense_node", argv)


if __name__ == "__main__":
    main()
