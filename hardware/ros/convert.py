"""numpy <-> ROS 2 message helpers; the readers duck-type, so they take rclpy messages as well as ours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hardware.ros.msgs import (
    CameraInfo,
    Float64MultiArray,
    Header,
    Image,
    JointState,
    MultiArrayDimension,
    MultiArrayLayout,
    Point,
    Pose,
    PoseStamped,
    Quaternion,
    Time,
)

_ENCODINGS: dict[str, tuple[int, np.dtype[Any]]] = {
    "rgb8": (3, np.dtype(np.uint8)), "bgr8": (3, np.dtype(np.uint8)), "rgba8": (4, np.dtype(np.uint8)),
    "bgra8": (4, np.dtype(np.uint8)), "mono8": (1, np.dtype(np.uint8)), "8UC1": (1, np.dtype(np.uint8)),
    "8UC3": (3, np.dtype(np.uint8)), "mono16": (1, np.dtype("<u2")), "16UC1": (1, np.dtype("<u2")),
    "32FC1": (1, np.dtype("<f4")),
}
"""sensor_msgs/image_encodings used here: (channels, pixel dtype); 16UC1 is depth in millimetres."""


def to_stamp(seconds: float) -> Time:
    """builtin_interfaces/Time from seconds (rounded to the nanosecond)."""
    ns = round(seconds * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def from_stamp(stamp: Any) -> float:
    """Seconds from a builtin_interfaces/Time (ours or rclpy's)."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def header(seconds: float, frame_id: str = "") -> Header:
    """std_msgs/Header stamped at `seconds`."""
    return Header(stamp=to_stamp(seconds), frame_id=frame_id)


# -- JointState --------------------------------------------------------------------------------------------------
def joint_state_msg(
    names: Sequence[str],
    position: np.ndarray,
    velocity: np.ndarray | None = None,
    effort: np.ndarray | None = None,
    *,
    stamp: float = 0.0,
    frame_id: str = "",
) -> JointState:
    """sensor_msgs/JointState from arrays laid out like `names` (velocity/effort may be omitted, as in ROS)."""
    def vals(a: np.ndarray | None) -> list[float]:
        return [] if a is None else np.asarray(a, dtype=np.float64).tolist()

    pos = vals(position)
    if len(pos) != len(names):
        raise ValueError(f"joint_state_msg: {len(names)} names but {len(pos)} positions")
    return JointState(header=header(stamp, frame_id), name=list(names), position=pos, velocity=vals(velocity),
                      effort=vals(effort))


def joint_state_arrays(
    msg: Any, names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, velocity, effort) float64 arrays in the order of `names` (default: the message's own order).

    Missing velocity/effort come back as NaN (ROS allows empty arrays); a joint absent from the message, or
    arrays whose lengths do not match the names, raise ValueError (the message is malformed for this robot).
    """
    msg_names = list(msg.name)
    n = len(msg_names)
    cols = []
    for field_name in ("position", "velocity", "effort"):
        a = np.asarray(getattr(msg, field_name), dtype=np.float64)
        if a.size == 0:
            a = np.full(n, np.nan)
        elif a.size != n:
            raise ValueError(f"JointState has {n} names but {a.size} {field_name} values")
        cols.append(a)
    if names is None or list(names) == msg_names:
        return cols[0], cols[1], cols[2]
    index = {nm: i for i, nm in enumerate(msg_names)}
    missing = [nm for nm in names if nm not in index]
    if missing:
        raise ValueError(f"JointState lacks joints {missing}; it has {msg_names}")
    order = np.array([index[nm] for nm in names], dtype=np.intp)
    return cols[0][order], cols[1][order], cols[2][order]


# -- Image -------------------------------------------------------------------------------------------------------
def image_msg(array: np.ndarray, *, stamp: float = 0.0, frame_id: str = "", encoding: str = "rgb8") -> Image:
    """sensor_msgs/Image from an HxWxC (or HxW) array whose dtype fits `encoding`, rows packed (step = W * C * size)."""
    enc = _ENCODINGS.get(encoding)
    if enc is None:
        raise ValueError(f"unsupported image encoding {encoding!r}; use one of {sorted(_ENCODINGS)}")
    channels, dtype = enc
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] != channels or a.dtype.kind != dtype.kind or a.dtype.itemsize != dtype.itemsize:
        raise ValueError(f"image_msg: {a.dtype} array of shape {np.shape(array)} does not fit encoding {encoding!r}")
    a = np.ascontiguousarray(a, dtype=dtype)
    h, w, _ = a.shape
    return Image(header=header(stamp, frame_id), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=w * channels * dtype.itemsize, data=a.tobytes())


def image_array(msg: Any) -> np.ndarray:
    """HxWxC array in the encoding's dtype (a copy-free view of the message data where possible);
    ValueError when malformed."""
    enc = _ENCODINGS.get(msg.encoding)
    if enc is None:
        raise ValueError(f"unsupported image encoding {msg.encoding!r}; use one of {sorted(_ENCODINGS)}")
    channels, dtype = enc
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * channels * dtype.itemsize
    data = msg.data
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray | memoryview) else (
        np.asarray(data, dtype=np.uint8))
    if step < row or buf.size < h * step:
        raise ValueError(f"image {h}x{w} {msg.encoding} with step {step} does not fit {buf.size} data bytes")
    rows = buf[: h * step].reshape(h, step)[:, :row]
    return np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels) if dtype.itemsize > 1 else (
        rows.reshape(h, w, channels))


def camera_info_msg(height: int, width: int, fovy_deg: float, *, stamp: float = 0.0, frame_id: str = "") -> CameraInfo:
    """A distortion-free pinhole CameraInfo for a camera with vertical field of view `fovy_deg` (MuJoCo's fovy)."""
    f = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraInfo(
        header=header(stamp, frame_id), height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
        k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0], r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


# -- Pose --------------------------------------------------------------------------------------------------------
def pose_msg(pose7: np.ndarray, *, stamp: float = 0.0, frame_id: str = "world") -> PoseStamped:
    """PoseStamped from realrl's 7-vector (x, y, z, qw, qx, qy, qz): MuJoCo's wxyz order, ROS's xyzw fields."""
    p = np.asarray(pose7, dtype=np.float64)
    if p.shape != (7,):
        raise ValueError(f"pose_msg needs a 7-vector (x, y, z, qw, qx, qy, qz), got shape {p.shape}")
    x, y, z, qw, qx, qy, qz = p.tolist()
    return PoseStamped(header=header(stamp, frame_id),
                       pose=Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw)))


def pose_array(msg: Any) -> np.ndarray:
    """realrl's 7-vector (x, y, z, qw, qx, qy, qz) from a Pose or PoseStamped."""
    pose = getattr(msg, "pose", msg)
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float64)


# -- Float64MultiArray -------------------------------------------------------------------------------------------
def float_array_msg(values: np.ndarray, label: str = "") -> Float64MultiArray:
    """A 1-D Float64MultiArray (one layout dimension, as ros2_control's forward command controllers take)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    dim = MultiArrayDimension(label=label, size=v.size, stride=v.size)
    return Float64MultiArray(layout=MultiArrayLayout(dim=[dim], data_offset=0), data=v.tolist())


def float_array(msg: Any) -> np.ndarray:
    """The data of a Float64MultiArray as a float64 array (layout offset honoured)."""
    return np.asarray(msg.data, dtype=np.float64)[int(msg.layout.data_offset):]
