"""The RealSense node over DDS, fed by an rs.software_device in its own process: colour and depth frames arrive
intact with their CameraInfo, in realsense2_camera's topic layout; a missing camera is a clear DeviceError."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyrealsense2")

from hardware.ros import SENSOR_DATA, create_node
from hardware.ros.convert import image_array
from hardware.ros.msgs import CameraInfo, Image
from tests.ros_util import ROOT, loopback_domain, spawn, stop, wait_for


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_software_camera_frames_arrive_intact(ros_domain: int, tmp_path: Path) -> None:
    log = tmp_path / "rs.log"
    proc = spawn(["tests/ros_realsense_fake.py"], ros_domain, log)
    node = create_node("viewer")
    color: list[Image] = []
    depth: list[Image] = []
    infos: list[CameraInfo] = []
    node.create_subscription(Image, "/cam/color/image_raw", color.append, SENSOR_DATA)
    node.create_subscription(Image, "/cam/depth/image_rect_raw", depth.append, SENSOR_DATA)
    node.create_subscription(CameraInfo, "/cam/color/camera_info", infos.append, SENSOR_DATA)
    try:
        assert wait_for(lambda: len(color) >= 55 and len(depth) >= 55, 20, lambda: node.spin_once(0.05)), (
            len(color), len(depth), log.read_text())
        for msg in color:
            rgb = image_array(msg)
            assert msg.encoding == "rgb8" and rgb.shape == (48, 64, 3)
            assert msg.header.frame_id == "cam_color_optical_frame"
            assert (rgb[:, :, 2] == 7).all() and (rgb[0, :, 1] == np.arange(64)).all()
        numbers = [int(image_array(m)[0, 0, 0]) for m in color]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # in order, no repeats
        for msg in depth:
            d = image_array(msg)
            assert msg.encoding == "16UC1" and d.dtype == np.dtype("<u2") and len(np.unique(d)) == 1
            assert 1000 <= int(d[0, 0, 0]) < 1060
        info = infos[-1]
        assert (info.width, info.height) == (64, 48) and info.k[0] == pytest.approx(60.0)
        assert info.k[4] == pytest.approx(61.0) and info.k[2] == pytest.approx(31.5)
        assert info.d == pytest.approx([0.1, -0.05, 0.0, 0.0, 0.01])
        stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in color]
        assert np.all(np.diff(stamps) > 0) and np.median(np.diff(stamps)) == pytest.approx(1 / 30, abs=0.01)
    finally:
        node.close()
        assert stop(proc) == 0, log.read_text()


def test_missing_camera_is_a_device_error() -> None:
    r = subprocess.run([sys.executable, "-m", "robot.cli", "node", "realsense", "--serial", "000000000000"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "no RealSense with serial '000000000000'" in r.stderr
