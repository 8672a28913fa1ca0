"""Hand-written plain-CDR (XCDR1, little endian) codec for the unitree_hg types a G1 exchanges at 500 Hz.

cyclonedds-python's generic machinery takes ~0.5 ms to serialize a LowCmd and ~0.8 ms to deserialize a LowState
(35 nested structs each); these numpy layouts do it in tens of microseconds. LowCmd/LowState go through their C
layout (which their CRC needs anyway) and a byte map from C to CDR offsets; the Dex3 hand types are uniform
records after a sequence length. tests/test_ros_msgs.py checks every type byte-for-byte against rosbags, and
tests/test_unitree_crc.py against cyclonedds' generic codec.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

import numpy as np

from hardware.ros.unitree_crc import (
    IMU_STATE,
    LOW_CMD,
    LOW_CMD_C,
    LOW_STATE,
    LOW_STATE_C,
    MOTOR_CMD,
    MOTOR_STATE,
    Schema,
    pack_low_cmd,
    pack_low_state,
)

CDR_LE = b"\x00\x01\x00\x00"
"""Encapsulation header of little-endian plain CDR."""
_U32 = struct.Struct("<I")


# -- C struct <-> CDR byte maps (LowCmd, LowState) ---------------------------------------------------------------
def _map(schema: Schema, dtype: np.dtype[Any], c_base: int, cdr: int, out: list[tuple[int, int, int]]) -> int:
    """Append (C offset, CDR offset, bytes) runs for every primitive of `schema`; returns the CDR offset after it.
    CDR aligns each primitive to its size from the start of the payload and never pads a struct."""
    fields = dtype.fields
    assert fields is not None
    for name, kind, count in schema:
        sub, c_off = fields[name][0], c_base + fields[name][1]
        if isinstance(kind, str):
            size = np.dtype(kind).itemsize
            cdr = -(-cdr // size) * size
            out.append((c_off, cdr, size * count))
            cdr += size * count
        else:
            elem = sub.base if count > 1 else sub
            for i in range(count):
                cdr = _map(kind, elem, c_off + i * elem.itemsize, cdr, out)
    return cdr


class CStructCdr:
    """Moves a fixed-size struct between its C layout and its CDR payload with one gather/scatter."""

    def __init__(self, schema: Schema, c_dtype: np.dtype[Any]) -> None:
        runs: list[tuple[int, int, int]] = []
        self.cdr_size = _map(schema, c_dtype, 0, 0, runs)
        self.c_dtype = c_dtype
        c_size = c_dtype.itemsize
        # CDR padding bytes read from (and are written to) one spare byte past the C struct.
        index = np.full(self.cdr_size, c_size, dtype=np.intp)
        for c_off, cdr_off, n in runs:
            index[cdr_off : cdr_off + n] = np.arange(c_off, c_off + n)
        self._index = index

    def to_cdr(self, c: np.ndarray) -> bytes:
        """CDR payload (no encapsulation header) of a packed C struct."""
        ext = np.zeros(self.c_dtype.itemsize + 1, dtype=np.uint8)
        ext[:-1] = np.frombuffer(np.ascontiguousarray(c).data, dtype=np.uint8)
        return ext[self._index].tobytes()

    def from_cdr(self, payload: bytes | memoryview) -> np.ndarray:
        """The packed C struct (0-d structured array) of a CDR payload; ValueError when it is too short."""
        if len(payload) < self.cdr_size:
            raise ValueError(f"CDR sample of {len(payload)} bytes is shorter than the {self.cdr_size} of the type")
        ext = np.zeros(self.c_dtype.itemsize + 1, dtype=np.uint8)
        ext[self._index] = np.frombuffer(payload, dtype=np.uint8, count=self.cdr_size)
        return ext[:-1].view(self.c_dtype).reshape(())


@functools.cache
def low_cmd_cdr() -> CStructCdr:
    """The LowCmd map (1000-byte CDR payload, 1004-byte C struct)."""
    return CStructCdr(LOW_CMD, LOW_CMD_C)


@functools.cache
def low_state_cdr() -> CStructCdr:
    """The LowState map (2088-byte CDR payload, 2092-byte C struct)."""
    return CStructCdr(LOW_STATE, LOW_STATE_C)


def _payload(data: bytes) -> memoryview:
    if bytes(data[:2]) != CDR_LE[:2]:
        raise ValueError("not little-endian plain CDR")
    return memoryview(data)[4:]


def _records(a: np.ndarray, schema: Schema, cls: Any) -> list[Any]:
    """One `cls` per element of a structured array: plain Python values, as cyclonedds decodes them."""
    cols = [a[name].tolist() for name, _, _ in schema]
    names = [name for name, _, _ in schema]
    return [cls(**dict(zip(names, row, strict=True))) for row in zip(*cols, strict=True)]


def encode_low_cmd(msg: Any) -> bytes:
    """Plain CDR (with header) of a unitree_hg LowCmd."""
    return CDR_LE + low_cmd_cdr().to_cdr(pack_low_cmd(msg))


def decode_low_cmd(data: bytes, cls: Any, motor_cls: Any) -> Any:
    """A LowCmd (class `cls`, motors `motor_cls`) from plain CDR; ValueError when malformed."""
    a = low_cmd_cdr().from_cdr(_payload(data))
    return cls(mode_pr=int(a["mode_pr"]), mode_machine=int(a["mode_machine"]),
               motor_cmd=_records(a["motor_cmd"], MOTOR_CMD, motor_cls), reserve=a["reserve"].tolist(),
               crc=int(a["crc"]))


def encode_low_state(msg: Any) -> bytes:
    """Plain CDR (with header) of a unitree_hg LowState."""
    return CDR_LE + low_state_cdr().to_cdr(pack_low_state(msg))


def decode_low_state(data: bytes, cls: Any, imu_cls: Any, motor_cls: Any) -> Any:
    """A LowState from plain CDR; ValueError when malformed."""
    a = low_state_cdr().from_cdr(_payload(data))
    imu = a["imu_state"]
    return cls(version=a["version"].tolist(), mode_pr=int(a["mode_pr"]), mode_machine=int(a["mode_machine"]),
               tick=int(a["tick"]), imu_state=imu_cls(**{n: imu[n].tolist() for n, _, _ in IMU_STATE}),
               motor_state=_records(a["motor_state"], MOTOR_STATE, motor_cls),
               wireless_remote=a["wireless_remote"].tobytes(), reserve=a["reserve"].tolist(), crc=int(a["crc"]))


# -- Dex3 hands: a sequence of uniform records, then fixed fields --------------------------------------------------
# From a 4-aligned offset a MotorCmd/MotorState record is uniform in CDR: the uint8 mode, three padding bytes,
# then 4-byte fields (MotorState's two int16 temperatures fill one 4-byte slot).
_MOTOR_CMD_CDR = np.dtype({"names": ["mode", "q", "dq", "tau", "kp", "kd", "reserve"],
                           "formats": ["u1", "<f4", "<f4", "<f4", "<f4", "<f4", "<u4"],
                           "offsets": [0, 4, 8, 12, 16, 20, 24], "itemsize": 28})
_MOTOR_STATE_CDR = np.dtype({"names": ["mode", "q", "dq", "ddq", "tau_est", "temperature", "vol", "sensor",
                                       "motorstate", "reserve"],
                             "formats": ["u1", "<f4", "<f4", "<f4", "<f4", ("<i2", (2,)), "<f4", ("<u4", (2,)),
                                         "<u4", ("<u4", (4,))],
                             "offsets": [0, 4, 8, 12, 16, 20, 24, 28, 36, 40], "itemsize": 56})
_PRESS_CDR = np.dtype([("pressure", "<f4", (12,)), ("temperature", "<f4", (12,))])
# IMUState from a 4-aligned offset: 13 floats, the int16 temperature, two padding bytes before the next float.
_HAND_TAIL = np.dtype({"names": ["quaternion", "gyroscope", "accelerometer", "rpy", "temperature", "power_v",
                                 "power_a", "system_v", "device_v", "error", "reserve"],
                       "formats": [("<f4", (4,)), ("<f4", (3,)), ("<f4", (3,)), ("<f4", (3,)), "<i2", "<f4", "<f4",
                                   "<f4", "<f4", ("<u4", (2,)), ("<u4", (2,))],
                       "offsets": [0, 16, 28, 40, 52, 56, 60, 64, 68, 72, 80], "itemsize": 88})


def _fill(dtype: np.dtype[Any], items: list[Any], schema: tuple[str, ...]) -> np.ndarray:
    a = np.zeros(len(items), dtype)
    if items:
        for name in schema:
            a[name] = [getattr(m, name) for m in items]
    return a


def encode_hand_cmd(msg: Any) -> bytes:
    """Plain CDR (with header) of a unitree_hg HandCmd."""
    motors = list(msg.motor_cmd)
    recs = _fill(_MOTOR_CMD_CDR, motors, tuple(n for n, _, _ in MOTOR_CMD))
    return b"".join((CDR_LE, _U32.pack(len(motors)), recs.tobytes(), np.asarray(list(msg.reserve), "<u4").tobytes()))


def _seq(view: memoryview, pos: int, dtype: np.dtype[Any]) -> tuple[np.ndarray, int]:
    if pos + 4 > len(view):
        raise ValueError("CDR sample too short for a sequence length")
    (n,) = _U32.unpack_from(view, pos)
    end = pos + 4 + n * dtype.itemsize
    if end > len(view):
        raise ValueError(f"CDR sequence of {n} records runs past the end of the sample")
    return np.frombuffer(view, dtype=dtype, count=n, offset=pos + 4), end


def decode_hand_cmd(data: bytes, cls: Any, motor_cls: Any) -> Any:
    """A HandCmd from plain CDR; ValueError when malformed."""
    view = _payload(data)
    motors, pos = _seq(view, 0, _MOTOR_CMD_CDR)
    if pos + 16 > len(view):
        raise ValueError("CDR sample too short for a HandCmd")
    reserve = np.frombuffer(view, "<u4", count=4, offset=pos).tolist()
    return cls(motor_cmd=_records(motors, MOTOR_CMD, motor_cls), reserve=reserve)


def encode_hand_state(msg: Any) -> bytes:
    """Plain CDR (with header) of a unitree_hg HandState."""
    motors = list(msg.motor_state)
    press = list(msg.press_sensor_state)
    m = _fill(_MOTOR_STATE_CDR, motors, tuple(n for n, _, _ in MOTOR_STATE))
    p = _fill(_PRESS_CDR, press, ("pressure", "temperature"))
    tail = np.zeros((), _HAND_TAIL)
    imu = msg.imu_state
    for name, _, _ in IMU_STATE:
        tail[name] = getattr(imu, name)
    for name in ("power_v", "power_a", "system_v", "device_v", "error", "reserve"):
        tail[name] = getattr(msg, name)
    return b"".join((CDR_LE, _U32.pack(len(motors)), m.tobytes(), _U32.pack(len(press)), p.tobytes(),
                     tail.tobytes()))


def decode_hand_state(data: bytes, cls: Any, motor_cls: Any, press_cls: Any, imu_cls: Any) -> Any:
    """A HandState from plain CDR; ValueError when malformed."""
    view = _payload(data)
    motors, pos = _seq(view, 0, _MOTOR_STATE_CDR)
    press, pos = _seq(view, pos, _PRESS_CDR)
    if pos + _HAND_TAIL.itemsize > len(view):
        raise ValueError("CDR sample too short for a HandState")
    t = np.frombuffer(view, _HAND_TAIL, count=1, offset=pos)[0]
    imu = imu_cls(**{n: t[n].tolist() for n, _, _ in IMU_STATE})
    return cls(motor_state=_records(motors, MOTOR_STATE, motor_cls),
               press_sensor_state=_records(press, (("pressure", "f4", 12), ("temperature", "f4", 12)), press_cls),
               imu_state=imu, power_v=float(t["power_v"]), power_a=float(t["power_a"]),
               system_v=float(t["system_v"]), device_v=float(t["device_v"]), error=t["error"].tolist(),
               reserve=t["reserve"].tolist())
