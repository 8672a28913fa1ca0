"""Unitree's CRC32 (`crc32_core`) of rt/lowcmd and rt/lowstate, over the packed C structs, vectorized with numpy.

The SDK computes `crc32_core((uint32_t*)&msg, sizeof(msg) / 4 - 1)`: CRC-32 with polynomial 0x04C11DB7, initial
value 0xFFFFFFFF, no reflection and no final XOR (the CRC-32/MPEG-2 parameters), fed the struct's 32-bit words
most significant bit first, over every word but the trailing `crc` itself. The words are those of the *C* struct
in memory (little endian, natural alignment, zero padding), which is not the CDR layout on the wire: LowCmd has
two padding bytes after `mode_machine` in C and none in CDR, LowState pads the IMU's int16 temperature in C only.
So the message is first packed into its C layout (`pack_low_cmd`, `pack_low_state`), then checksummed.

The checksum of a fixed-length buffer is an affine map of its bytes over GF(2): `FixedCrc` precomputes each byte
position's contribution (a 256-entry column per position) and XOR-reduces one table lookup per byte, about 20 us
for a LowState where a byte-at-a-time Python loop takes 2 ms.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

POLY = 0x04C11DB7
"""CRC-32 generator polynomial (MSB-first form)."""
INIT = 0xFFFFFFFF
"""Initial register value."""

_M32 = 0xFFFFFFFF


@functools.cache
def _byte_table() -> np.ndarray:
    """table[v]: the register after shifting byte v through a zero register (MSB first)."""
    crc = np.arange(256, dtype=np.uint32) << np.uint32(24)
    for _ in range(8):
        top = (crc & np.uint32(0x80000000)) != 0
        crc = np.where(top, (crc << np.uint32(1)) ^ np.uint32(POLY), crc << np.uint32(1)).astype(np.uint32)
    return crc


def crc32_mpeg2(data: bytes | bytearray | memoryview, init: int = INIT) -> int:
    """CRC-32/MPEG-2 of a byte string (catalogue check value: 0x0376E6E7 for b'123456789')."""
    table = _byte_table().tolist()
    crc = init & _M32
    for b in bytes(data):
        crc = ((crc << 8) & _M32) ^ table[(crc >> 24) ^ b]
    return crc


def crc32_core(words: Sequence[int] | np.ndarray) -> int:
    """Unitree's `crc32_core(ptr, len)` over 32-bit words: each word's bits are fed most significant first, which
    is CRC-32/MPEG-2 over the words written big endian."""
    w = np.asarray(words, dtype=np.uint64)
    if np.any(w > _M32):
        raise ValueError("crc32_core takes 32-bit words")
    return crc32_mpeg2(w.astype(">u4").tobytes())


class FixedCrc:
    """`crc32_core` of the first `n_bytes` (a multiple of 4) of little-endian C buffers of one fixed length.

    By linearity, crc(buf) = crc(zeros) ^ XOR_i column_i[buf[i]], where column_i[v] is what byte value v at
    position i contributes once shifted through the bytes after it.
    """

    def __init__(self, n_bytes: int) -> None:
        if n_bytes <= 0 or n_bytes % 4:
            raise ValueError(f"FixedCrc covers whole 32-bit words, got {n_bytes} bytes")
        self.n_bytes = n_bytes
        table = _byte_table()
        columns = np.empty((n_bytes, 256), dtype=np.uint32)
        col = table.copy()  # the last byte of the stream: shifted through nothing
        for p in range(n_bytes - 1, -1, -1):
            columns[p] = col
            col = (col << np.uint32(8)) ^ table[col >> np.uint32(24)]
        # Buffer byte i is byte (3 - i % 4) of its little-endian word in the most-significant-first stream.
        i = np.arange(n_bytes)
        self._columns = columns[4 * (i // 4) + 3 - i % 4]
        self._rows = i
        self._offset = crc32_mpeg2(bytes(n_bytes))  # the initial value's contribution

    def __call__(self, buf: bytes | bytearray | memoryview | np.ndarray) -> int:
        """CRC of buf[:n_bytes] (buf may be longer: the trailing crc word and anything after are ignored)."""
        b = np.frombuffer(buf if not isinstance(buf, np.ndarray) else np.ascontiguousarray(buf).data, dtype=np.uint8)
        if b.size < self.n_bytes:
            raise ValueError(f"buffer of {b.size} bytes is shorter than the {self.n_bytes} the CRC covers")
        return self._offset ^ int(np.bitwise_xor.reduce(self._columns[self._rows, b[: self.n_bytes]]))


# -- the C layouts of the unitree_hg structs ---------------------------------------------------------------------
Schema = tuple[tuple[str, Any, int], ...]
"""(field, primitive dtype string or nested schema, element count) in declaration order."""

MOTOR_CMD: Schema = (("mode", "u1", 1), ("q", "f4", 1), ("dq", "f4", 1), ("tau", "f4", 1), ("kp", "f4", 1),
                     ("kd", "f4", 1), ("reserve", "u4", 1))
MOTOR_STATE: Schema = (("mode", "u1", 1), ("q", "f4", 1), ("dq", "f4", 1), ("ddq", "f4", 1), ("tau_est", "f4", 1),
                       ("temperature", "i2", 2), ("vol", "f4", 1), ("sensor", "u4", 2), ("motorstate", "u4", 1),
                       ("reserve", "u4", 4))
IMU_STATE: Schema = (("quaternion", "f4", 4), ("gyroscope", "f4", 3), ("accelerometer", "f4", 3), ("rpy", "f4", 3),
                     ("temperature", "i2", 1))
LOW_CMD: Schema = (("mode_pr", "u1", 1), ("mode_machine", "u1", 1), ("motor_cmd", MOTOR_CMD, 35),
                   ("reserve", "u4", 4), ("crc", "u4", 1))
LOW_STATE: Schema = (("version", "u4", 2), ("mode_pr", "u1", 1), ("mode_machine", "u1", 1), ("tick", "u4", 1),
                     ("imu_state", IMU_STATE, 1), ("motor_state", MOTOR_STATE, 35), ("wireless_remote", "u1", 40),
                     ("reserve", "u4", 4), ("crc", "u4", 1))


def c_struct(schema: Schema) -> tuple[np.dtype[Any], int]:
    """(numpy dtype with the C struct's offsets and size, its alignment): natural alignment, as gcc lays it out."""
    names, formats, offsets = [], [], []
    off, struct_align = 0, 1
    for name, kind, count in schema:
        if isinstance(kind, str):
            base, align = np.dtype("<" + kind), np.dtype(kind).itemsize
        else:
            base, align = c_struct(kind)
        off = -(-off // align) * align
        names.append(name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(off)
        off += base.itemsize * count
        struct_align = max(struct_align, align)
    size = -(-off // struct_align) * struct_align
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size}), struct_align


LOW_CMD_C = c_struct(LOW_CMD)[0]
"""unitree_hg LowCmd_ as the SDK's C++ struct: 1004 bytes, crc at offset 1000."""
LOW_STATE_C = c_struct(LOW_STATE)[0]
"""unitree_hg LowState_ as the SDK's C++ struct: 2092 bytes, crc at offset 2088."""


@functools.cache
def _fixed(n_bytes: int) -> FixedCrc:
    return FixedCrc(n_bytes)


def crc_of_c(buf: np.ndarray | bytes) -> int:
    """The CRC of a packed LowCmd or LowState C struct (every word but the last, the crc field)."""
    size = buf.nbytes if isinstance(buf, np.ndarray) else len(buf)
    if size not in (LOW_CMD_C.itemsize, LOW_STATE_C.itemsize):
        raise ValueError(f"{size} bytes is neither a LowCmd ({LOW_CMD_C.itemsize}) nor a LowState "
                         f"({LOW_STATE_C.itemsize}) C struct")
    return _fixed(size - 4)(buf)


def pack_low_cmd(msg: Any) -> np.ndarray:
    """A LowCmd (ours, rclpy's or any object with the fields) packed into its C layout (0-d structured array)."""
    a = np.zeros((), LOW_CMD_C)
    a["mode_pr"] = msg.mode_pr
    a["mode_machine"] = msg.mode_machine
    motors = list(msg.motor_cmd)
    mc = a["motor_cmd"]
    for name, _, _ in MOTOR_CMD:
        mc[name] = [getattr(m, name) for m in motors]
    a["reserve"] = list(msg.reserve)
    a["crc"] = msg.crc
    return a


def pack_low_state(msg: Any) -> np.ndarray:
    """A LowState packed into its C layout (0-d structured array)."""
    a = np.zeros((), LOW_STATE_C)
    for name in ("version", "mode_pr", "mode_machine", "tick", "reserve", "crc"):
        value = getattr(msg, name)
        a[name] = list(value) if isinstance(value, Sequence) else value
    imu = a["imu_state"]
    for name, _, _ in IMU_STATE:
        value = getattr(msg.imu_state, name)
        imu[name] = list(value) if isinstance(value, Sequence) else value
    motors = list(msg.motor_state)
    ms = a["motor_state"]
    for name, _, count in MOTOR_STATE:
        values = [getattr(m, name) for m in motors]
        ms[name] = [list(v) for v in values] if count > 1 else values
    a["wireless_remote"] = np.frombuffer(bytes(msg.wireless_remote), dtype=np.uint8)
    return a


def low_cmd_crc(msg: Any) -> int:
    """The crc an SDK-built LowCmd carries (the message's own crc field is ignored)."""
    return crc_of_c(pack_low_cmd(msg))


def low_state_crc(msg: Any) -> int:
    """The crc the robot puts in a LowState (the message's own crc field is ignored)."""
    return crc_of_c(pack_low_state(msg))
