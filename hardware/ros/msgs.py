"""ROS 2 message types as Cyclone DDS IDL structs, byte-for-byte what rmw_cyclonedds puts on the wire."""

# No `from __future__ import annotations` here: cyclonedds reads the field annotations as live objects.

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct
from cyclonedds.idl._support import Endianness

from hardware.ros.fastcdr import decode_joint_state, encode_joint_state

_LITTLE = sys.byteorder == "little"  # cyclonedds writes native order when none is asked for

# ROS 2 maps `pkg/msg/Name` to the DDS type `pkg::msg::dds_::Name_` (cyclonedds-python spells the scopes with
# dots in `typename` and turns them into `::`). Every struct is @final: ROS 2 types are plain CDR, never
# appendable or mutable. `uint8[]` fields are `bytes`: cyclonedds serializes those with one copy, whereas a
# `sequence[uint8]` goes element by element (about 70x slower for an image).

M = TypeVar("M", bound=type)


def ros_type_name(msg_type: type) -> str:
    """'sensor_msgs/msg/JointState' for the DDS type 'sensor_msgs::msg::dds_::JointState_'."""
    pkg, kind, _, name = str(msg_type.__idl_typename__).split(".")  # type: ignore[attr-defined]
    return f"{pkg}/{kind}/{name.removesuffix('_')}"


def dds_type_name(msg_type: type) -> str:
    """The DDS type name, 'sensor_msgs::msg::dds_::JointState_'."""
    return str(msg_type.__idl_typename__).replace(".", "::")  # type: ignore[attr-defined]


def _bytes_as_uint8_sequence(cls: M) -> M:
    """Describe `bytes` fields as sequence<uint8> in the XTypes type information.

    cyclonedds-python serializes a `bytes` field exactly as a sequence<uint8> (uint32 length, then the bytes)
    but its XTypes builder cannot describe `bytes`, so creating a topic fails. A twin class with the same type
    name and `sequence[uint8]` fields yields the right type information, which we hand to `cls`.
    """
    idl: Any = cls.__idl__  # type: ignore[attr-defined]
    u8_seq = t.sequence[t.uint8]
    annotations = {f.name: (u8_seq if f.type is bytes else f.type) for f in dataclasses.fields(cls)}
    twin: Any = type(f"_{cls.__name__}TypeInfo", (IdlStruct,), {"__annotations__": annotations,
                                                                "__module__": cls.__module__},
                     typename=cls.__idl_typename__)  # type: ignore[attr-defined]
    twin = annotate.final(dataclass(twin))
    twin.__idl__.fill_type_data()
    idl.populate()
    idl._xt_data = twin.__idl__._xt_data
    idl._xt_bytedata = twin.__idl__._xt_bytedata
    return cls


# -- builtin_interfaces, std_msgs, rosgraph_msgs -----------------------------------------------------------------
@dataclass
@annotate.final
class Time(IdlStruct, typename="builtin_interfaces.msg.dds_.Time_"):
    """builtin_interfaces/Time."""

    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
@annotate.final
class Duration(IdlStruct, typename="builtin_interfaces.msg.dds_.Duration_"):
    """builtin_interfaces/Duration."""

    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
@annotate.final
class Header(IdlStruct, typename="std_msgs.msg.dds_.Header_"):
    """std_msgs/Header."""

    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
@annotate.final
class String(IdlStruct, typename="std_msgs.msg.dds_.String_"):
    """std_msgs/String."""

    data: str = ""


@dataclass
@annotate.final
class MultiArrayDimension(IdlStruct, typename="std_msgs.msg.dds_.MultiArrayDimension_"):
    """std_msgs/MultiArrayDimension."""

    label: str = ""
    size: t.uint32 = 0
    stride: t.uint32 = 0


@dataclass
@annotate.final
class MultiArrayLayout(IdlStruct, typename="std_msgs.msg.dds_.MultiArrayLayout_"):
    """std_msgs/MultiArrayLayout."""

    dim: t.sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: t.uint32 = 0


@dataclass
@annotate.final
class Float64MultiArray(IdlStruct, typename="std_msgs.msg.dds_.Float64MultiArray_"):
    """std_msgs/Float64MultiArray."""

    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: t.sequence[t.float64] = field(default_factory=list)


@_bytes_as_uint8_sequence
@dataclass
@annotate.final
class UInt8MultiArray(IdlStruct, typename="std_msgs.msg.dds_.UInt8MultiArray_"):
    """std_msgs/UInt8MultiArray."""

    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: bytes = b""


@dataclass
@annotate.final
class Clock(IdlStruct, typename="rosgraph_msgs.msg.dds_.Clock_"):
    """rosgraph_msgs/Clock (the /clock topic)."""

    clock: Time = field(default_factory=Time)


# -- sensor_msgs -------------------------------------------------------------------------------------------------
@dataclass
@annotate.final
class JointState(IdlStruct, typename="sensor_msgs.msg.dds_.JointState_"):
    """sensor_msgs/JointState."""

    header: Header = field(default_factory=Header)
    name: t.sequence[str] = field(default_factory=list)
    position: t.sequence[t.float64] = field(default_factory=list)
    velocity: t.sequence[t.float64] = field(default_factory=list)
    effort: t.sequence[t.float64] = field(default_factory=list)

    # The control-rate message: a hand-written codec (hardware/ros/fastcdr.py) for the little-endian plain CDR
    # that ROS 2 uses, the generic path for anything else (big-endian peers, XCDR2).
    def serialize(self, buffer: Any = None, endianness: Any = None, use_version_2: bool | None = None) -> bytes:
        """Plain CDR, little endian, with the encapsulation header."""
        if buffer is None and endianness in (None, Endianness.Little) and not use_version_2 and _LITTLE:
            return encode_joint_state(self)
        return super().serialize(buffer=buffer, endianness=endianness, use_version_2=use_version_2)

    @classmethod
    def deserialize(cls, data: bytes, has_header: bool = True, use_version_2: bool | None = None) -> "JointState":
        """Decode (the fast path for little-endian plain CDR)."""
        if has_header and not use_version_2 and bytes(data[:2]) == b"\x00\x01":
            decoded: JointState = decode_joint_state(bytes(data), cls)
            return decoded
        return super().deserialize(data, has_header=has_header, use_version_2=use_version_2)


@_bytes_as_uint8_sequence
@dataclass
@annotate.final
class Image(IdlStruct, typename="sensor_msgs.msg.dds_.Image_"):
    """sensor_msgs/Image."""

    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    encoding: str = ""
    is_bigendian: t.uint8 = 0
    step: t.uint32 = 0
    data: bytes = b""


@dataclass
@annotate.final
class RegionOfInterest(IdlStruct, typename="sensor_msgs.msg.dds_.RegionOfInterest_"):
    """sensor_msgs/RegionOfInterest."""

    x_offset: t.uint32 = 0
    y_offset: t.uint32 = 0
    height: t.uint32 = 0
    width: t.uint32 = 0
    do_rectify: bool = False


@dataclass
@annotate.final
class CameraInfo(IdlStruct, typename="sensor_msgs.msg.dds_.CameraInfo_"):
    """sensor_msgs/CameraInfo."""

    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    distortion_model: str = ""
    d: t.sequence[t.float64] = field(default_factory=list)
    k: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: t.array[t.float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: t.array[t.float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: t.uint32 = 0
    binning_y: t.uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


# -- geometry_msgs -----------------------------------------------------------------------------------------------
@dataclass
@annotate.final
class Vector3(IdlStruct, typename="geometry_msgs.msg.dds_.Vector3_"):
    """geometry_msgs/Vector3."""

    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
@annotate.final
class Point(IdlStruct, typename="geometry_msgs.msg.dds_.Point_"):
    """geometry_msgs/Point."""

    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
@annotate.final
class Quaternion(IdlStruct, typename="geometry_msgs.msg.dds_.Quaternion_"):
    """geometry_msgs/Quaternion (x, y, z, w; the identity by default, as in ROS)."""

    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0
    w: t.float64 = 1.0


@dataclass
@annotate.final
class Pose(IdlStruct, typename="geometry_msgs.msg.dds_.Pose_"):
    """geometry_msgs/Pose."""

    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
@annotate.final
class PoseStamped(IdlStruct, typename="geometry_msgs.msg.dds_.PoseStamped_"):
    """geometry_msgs/PoseStamped."""

    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
@annotate.final
class Twist(IdlStruct, typename="geometry_msgs.msg.dds_.Twist_"):
    """geometry_msgs/Twist."""

    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
@annotate.final
class TwistStamped(IdlStruct, typename="geometry_msgs.msg.dds_.TwistStamped_"):
    """geometry_msgs/TwistStamped."""

    header: Header = field(default_factory=Header)
    twist: Twist = field(default_factory=Twist)


@dataclass
@annotate.final
class Wrench(IdlStruct, typename="geometry_msgs.msg.dds_.Wrench_"):
    """geometry_msgs/Wrench."""

    force: Vector3 = field(default_factory=Vector3)
    torque: Vector3 = field(default_factory=Vector3)


@dataclass
@annotate.final
class WrenchStamped(IdlStruct, typename="geometry_msgs.msg.dds_.WrenchStamped_"):
    """geometry_msgs/WrenchStamped."""

    header: Header = field(default_factory=Header)
    wrench: Wrench = field(default_factory=Wrench)


# -- trajectory_msgs ---------------------------------------------------------------------------------------------
@dataclass
@annotate.final
class JointTrajectoryPoint(IdlStruct, typename="trajectory_msgs.msg.dds_.JointTrajectoryPoint_"):
    """trajectory_msgs/JointTrajectoryPoint."""

    positions: t.sequence[t.float64] = field(default_factory=list)
    velocities: t.sequence[t.float64] = field(default_factory=list)
    accelerations: t.sequence[t.float64] = field(default_factory=list)
    effort: t.sequence[t.float64] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
@annotate.final
class JointTrajectory(IdlStruct, typename="trajectory_msgs.msg.dds_.JointTrajectory_"):
    """trajectory_msgs/JointTrajectory."""

    header: Header = field(default_factory=Header)
    joint_names: t.sequence[str] = field(default_factory=list)
    points: t.sequence[JointTrajectoryPoint] = field(default_factory=list)


STANDARD_TYPES: tuple[type, ...] = (
    Time, Duration, Header, String, MultiArrayDimension, MultiArrayLayout, Float64MultiArray, UInt8MultiArray,
    Clock, JointState, Image, RegionOfInterest, CameraInfo, Vector3, Point, Quaternion, Pose, PoseStamped, Twist,
    TwistStamped, Wrench, WrenchStamped, JointTrajectoryPoint, JointTrajectory,
)
"""Every standard ROS 2 type defined here (the Unitree types live in hardware.ros.unitree)."""
