"""Hand-written plain-CDR (XCDR1, little endian) codec for JointState, the message of every control-rate loop.

cyclonedds-python encodes field by field through its generic machinery (~70 us per JointState here); this
codec packs the same bytes with struct/numpy in a few microseconds. tests/test_ros_msgs.py checks it
byte-for-byte against both cyclonedds and rosbags.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

_CDR_LE = b"\x00\x01\x00\x00"
_U32 = struct.Struct("<I")
_TIME = struct.Struct("<iI")


def _pad(buf: bytearray, align: int) -> None:
    # Offsets are relative to the end of the 4-byte encapsulation header.
    rem = (len(buf) - 4) % align
    if rem:
        buf += b"\x00" * (align - rem)


def _put_str(buf: bytearray, s: str) -> None:
    _pad(buf, 4)
    raw = s.encode()
    buf += _U32.pack(len(raw) + 1)
    buf += raw
    buf += b"\x00"


def _put_f64_seq(buf: bytearray, values: Any) -> None:
    _pad(buf, 4)
    a = np.asarray(values, dtype="<f8")
    buf += _U32.pack(a.size)
    if a.size:  # an empty sequence has no alignment padding (as cyclonedds and rosbags agree)
        _pad(buf, 8)
        buf += a.tobytes()


def encode_joint_state(msg: Any) -> bytes:
    """Plain CDR (with encapsulation header) of a sensor_msgs/JointState."""
    buf = bytearray(_CDR_LE)
    stamp = msg.header.stamp
    buf += _TIME.pack(stamp.sec, stamp.nanosec)
    _put_str(buf, msg.header.frame_id)
    _pad(buf, 4)
    buf += _U32.pack(len(msg.name))
    for name in msg.name:
        _put_str(buf, name)
    _put_f64_seq(buf, msg.position)
    _put_f64_seq(buf, msg.velocity)
    _put_f64_seq(buf, msg.effort)
    return bytes(buf)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 4

    def align(self, n: int) -> None:
        self.pos += (-(self.pos - 4)) % n

    def u32(self) -> int:
        self.align(4)
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(v)

    def string(self) -> str:
        n = self.u32()
        if n < 1 or self.pos + n > len(self.data) or self.data[self.pos + n - 1] != 0:
            raise ValueError("malformed CDR string")
        s = self.data[self.pos : self.pos + n - 1].decode()
        self.pos += n
        return s

    def f64_seq(self) -> list[float]:
        n = self.u32()
        if not n:
            return []
        self.align(8)
        end = self.pos + 8 * n
        if end > len(self.data):
            raise ValueError(f"CDR float64 sequence of {n} runs past the end of the sample")
        out = np.frombuffer(self.data, dtype="<f8", count=n, offset=self.pos).tolist()
        self.pos = end
        return out


def decode_joint_state(data: bytes, cls: type) -> Any:
    """A JointState (of class `cls`) from little-endian plain CDR; ValueError when malformed."""
    if data[:2] != _CDR_LE[:2]:
        raise ValueError("not little-endian plain CDR")
    r = _Reader(data)
    if len(data) < 12:
        raise ValueError("CDR sample too short for a JointState")
    sec, nanosec = _TIME.unpack_from(data, 4)
    r.pos = 12
    frame_id = r.string()
    count = r.u32()
    if count > (len(data) - r.pos) // 5:  # each name takes at least 5 bytes
        raise ValueError(f"CDR sequence length {count} exceeds the sample")
    names = [r.string() for _ in range(count)]
    position, velocity, effort = r.f64_seq(), r.f64_seq(), r.f64_seq()
    header_cls = cls.__dataclass_fields__["header"].default_factory  # type: ignore[attr-defined]
    header = header_cls()
    header.stamp.sec, header.stamp.nanosec, header.frame_id = sec, nanosec, frame_id
    return cls(header=header, name=names, position=position, velocity=velocity, effort=effort)
