"""Unitree `unitree_hg` low-level types (G1/H1-2 body over rt/lowcmd, rt/lowstate; Dex3 hands) as IDL structs."""

# No `from __future__ import annotations` here: cyclonedds reads the field annotations as live objects.

import sys
from dataclasses import dataclass, field
from typing import Any

import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct
from cyclonedds.idl._support import Endianness

from hardware.ros import unitree_codec as codec

G1_NUM_MOTORS = 35
"""Motor slots in LowCmd/LowState (the G1 uses the first 29)."""
DEX3_NUM_MOTORS = 7
"""Motors per Dex3-1 hand."""

_LITTLE = sys.byteorder == "little"  # cyclonedds writes native order when none is asked for


# The body and hand types travel at 500 Hz: a hand-written codec (hardware/ros/unitree_codec.py) for the
# little-endian plain CDR ROS 2 and the Unitree SDK use, the generic path for anything else.
def _fast_out(buffer: Any, endianness: Any, use_version_2: bool | None) -> bool:
    return buffer is None and endianness in (None, Endianness.Little) and not use_version_2 and _LITTLE


def _fast_in(data: bytes, has_header: bool, use_version_2: bool | None) -> bool:
    return has_header and not use_version_2 and bytes(data[:2]) == codec.CDR_LE[:2]


@dataclass
@annotate.final
class MotorCmd(IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):
    """One motor's PD command: tau = kp (q - q_meas) + kd (dq - dq_meas) + tau."""

    mode: t.uint8 = 0
    q: t.float32 = 0.0
    dq: t.float32 = 0.0
    tau: t.float32 = 0.0
    kp: t.float32 = 0.0
    kd: t.float32 = 0.0
    reserve: t.uint32 = 0


@dataclass
@annotate.final
class MotorState(IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):
    """One motor's measured state."""

    mode: t.uint8 = 0
    q: t.float32 = 0.0
    dq: t.float32 = 0.0
    ddq: t.float32 = 0.0
    tau_est: t.float32 = 0.0
    temperature: t.array[t.int16, 2] = field(default_factory=lambda: [0] * 2)
    vol: t.float32 = 0.0
    sensor: t.array[t.uint32, 2] = field(default_factory=lambda: [0] * 2)
    motorstate: t.uint32 = 0
    reserve: t.array[t.uint32, 4] = field(default_factory=lambda: [0] * 4)


@dataclass
@annotate.final
class IMUState(IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):
    """IMU: wxyz quaternion, gyro (rad/s), accelerometer (m/s^2), roll-pitch-yaw (rad)."""

    quaternion: t.array[t.float32, 4] = field(default_factory=lambda: [0.0] * 4)
    gyroscope: t.array[t.float32, 3] = field(default_factory=lambda: [0.0] * 3)
    accelerometer: t.array[t.float32, 3] = field(default_factory=lambda: [0.0] * 3)
    rpy: t.array[t.float32, 3] = field(default_factory=lambda: [0.0] * 3)
    temperature: t.int16 = 0


@dataclass
@annotate.final
class PressSensorState(IdlStruct, typename="unitree_hg.msg.dds_.PressSensorState_"):
    """A Dex3 fingertip pressure pad."""

    pressure: t.array[t.float32, 12] = field(default_factory=lambda: [0.0] * 12)
    temperature: t.array[t.float32, 12] = field(default_factory=lambda: [0.0] * 12)


@dataclass
@annotate.final
class LowCmd(IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):
    """Body low-level command on rt/lowcmd; `crc` is Unitree's CRC32 over the packed struct."""

    mode_pr: t.uint8 = 0
    mode_machine: t.uint8 = 0
    motor_cmd: t.array[MotorCmd, 35] = field(default_factory=lambda: [MotorCmd() for _ in range(G1_NUM_MOTORS)])
    reserve: t.array[t.uint32, 4] = field(default_factory=lambda: [0] * 4)
    crc: t.uint32 = 0

    def serialize(self, buffer: Any = None, endianness: Any = None, use_version_2: bool | None = None) -> bytes:
        """Plain CDR, little endian, with the encapsulation header."""
        if _fast_out(buffer, endianness, use_version_2):
            return codec.encode_low_cmd(self)
        return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "LowCmd":
        """Decode (the fast path for little-endian plain CDR)."""
        if _fast_in(data, has_header, use_version_2):
            decoded: LowCmd = codec.decode_low_cmd(bytes(data), cls, MotorCmd)
            return decoded
        return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)


@dataclass
@annotate.final
class LowState(IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):
    """Body low-level state on rt/lowstate."""

    version: t.array[t.uint32, 2] = field(default_factory=lambda: [0] * 2)
    mode_pr: t.uint8 = 0
    mode_machine: t.uint8 = 0
    tick: t.uint32 = 0
    imu_state: IMUState = field(default_factory=IMUState)
    motor_state: t.array[MotorState, 35] = field(default_factory=lambda: [MotorState() for _ in range(G1_NUM_MOTORS)])
    wireless_remote: t.array[t.uint8, 40] = field(default_factory=lambda: bytes(40))
    reserve: t.array[t.uint32, 4] = field(default_factory=lambda: [0] * 4)
    crc: t.uint32 = 0

    def serialize(self, buffer: Any = None, endianness: Any = None, use_version_2: bool | None = None) -> bytes:
        """Plain CDR, little endian, with the encapsulation header."""
        if _fast_out(buffer, endianness, use_version_2):
            return codec.encode_low_state(self)
        return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "LowState":
        """Decode (the fast path for little-endian plain CDR)."""
        if _fast_in(data, has_header, use_version_2):
            decoded: LowState = codec.decode_low_state(bytes(data), cls, IMUState, MotorState)
            return decoded
        return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)


@dataclass
@annotate.final
class HandCmd(IdlStruct, typename="unitree_hg.msg.dds_.HandCmd_"):
    """Dex3-1 hand command (rt/dex3/left/cmd, rt/dex3/right/cmd)."""

    motor_cmd: t.sequence[MotorCmd] = field(default_factory=lambda: [MotorCmd() for _ in range(DEX3_NUM_MOTORS)])
    reserve: t.array[t.uint32, 4] = field(default_factory=lambda: [0] * 4)

    def serialize(self, buffer: Any = None, endianness: Any = None, use_version_2: bool | None = None) -> bytes:
        """Plain CDR, little endian, with the encapsulation header."""
        if _fast_out(buffer, endianness, use_version_2):
            return codec.encode_hand_cmd(self)
        return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "HandCmd":
        """Decode (the fast path for little-endian plain CDR)."""
        if _fast_in(data, has_header, use_version_2):
            decoded: HandCmd = codec.decode_hand_cmd(bytes(data), cls, MotorCmd)
            return decoded
        return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)


@dataclass
@annotate.final
class HandState(IdlStruct, typename="unitree_hg.msg.dds_.HandState_"):
    """Dex3-1 hand state (rt/dex3/left/state, rt/dex3/right/state)."""

    motor_state: t.sequence[MotorState] = field(default_factory=lambda: [MotorState() for _ in range(DEX3_NUM_MOTORS)])
    press_sensor_state: t.sequence[PressSensorState] = field(default_factory=list)
    imu_state: IMUState = field(default_factory=IMUState)
    power_v: t.float32 = 0.0
    power_a: t.float32 = 0.0
    system_v: t.float32 = 0.0
    device_v: t.float32 = 0.0
    error: t.array[t.uint32, 2] = field(default_factory=lambda: [0] * 2)
    reserve: t.array[t.uint32, 2] = field(default_factory=lambda: [0] * 2)

    def serialize(self, buffer: Any = None, endianness: Any = None, use_version_2: bool | None = None) -> bytes:
        """Plain CDR, little endian, with the encapsulation header."""
        if _fast_out(buffer, endianness, use_version_2):
            return codec.encode_hand_state(self)
        return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "HandState":
        """Decode (the fast path for little-endian plain CDR)."""
        if _fast_in(data, has_header, use_version_2):
            decoded: HandState = codec.decode_hand_state(bytes(data), cls, MotorState, PressSensorState, IMUState)
            return decoded
        return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)


UNITREE_TYPES: tuple[type, ...] = (MotorCmd, MotorState, IMUState, PressSensorState, LowCmd, LowState, HandCmd,
                                   HandState)
"""Every unitree_hg type defined here."""

MSG_DEFINITIONS: dict[str, str] = {
    "unitree_hg/msg/MotorCmd": (
        "uint8 mode\nfloat32 q\nfloat32 dq\nfloat32 tau\nfloat32 kp\nfloat32 kd\nuint32 reserve\n"
    ),
    "unitree_hg/msg/MotorState": (
        "uint8 mode\nfloat32 q\nfloat32 dq\nfloat32 ddq\nfloat32 tau_est\nint16[2] temperature\nfloat32 vol\n"
        "uint32[2] sensor\nuint32 motorstate\nuint32[4] reserve\n"
    ),
    "unitree_hg/msg/IMUState": (
        "float32[4] quaternion\nfloat32[3] gyroscope\nfloat32[3] accelerometer\nfloat32[3] rpy\nint16 temperature\n"
    ),
    "unitree_hg/msg/PressSensorState": "float32[12] pressure\nfloat32[12] temperature\n",
    "unitree_hg/msg/LowCmd": (
        "uint8 mode_pr\nuint8 mode_machine\nMotorCmd[35] motor_cmd\nuint32[4] reserve\nuint32 crc\n"
    ),
    "unitree_hg/msg/LowState": (
        "uint32[2] version\nuint8 mode_pr\nuint8 mode_machine\nuint32 tick\nIMUState imu_state\n"
        "MotorState[35] motor_state\nuint8[40] wireless_remote\nuint32[4] reserve\nuint32 crc\n"
    ),
    "unitree_hg/msg/HandCmd": "MotorCmd[] motor_cmd\nuint32[4] reserve\n",
    "unitree_hg/msg/HandState": (
        "MotorState[] motor_state\nPressSensorState[] press_sensor_state\nIMUState imu_state\nfloat32 power_v\n"
        "float32 power_a\nfloat32 system_v\nfloat32 device_v\nuint32[2] error\nuint32[2] reserve\n"
    ),
}
"""The `.msg` definitions of the unitree_hg ROS 2 package (unitree_ros2), matching the structs above."""
