"""Golden bytes: every message type serializes exactly as rosbags (an independent CDR implementation) does."""

import dataclasses
import itertools
import struct
from typing import Any

import numpy as np
import pytest

from hardware.ros import convert
from hardware.ros.msgs import (
    STANDARD_TYPES,
    Image,
    JointState,
    dds_type_name,
    ros_type_name,
)
from hardware.ros.typehash import TYPE_HASHES, user_data
from hardware.ros.unitree import MSG_DEFINITIONS, UNITREE_TYPES

rosbags_typesys = pytest.importorskip("rosbags.typesys")  # the independent CDR implementation ([dev] extra)

ALL_TYPES = STANDARD_TYPES + UNITREE_TYPES
BY_NAME = {ros_type_name(T): T for T in ALL_TYPES}
NT = rosbags_typesys.store.Nodetype
_NP = {"bool": np.bool_, "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
       "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "float32": np.float32,
       "float64": np.float64, "byte": np.uint8, "char": np.uint8}


def typestore(store: str) -> Any:
    ts = rosbags_typesys.get_typestore(getattr(rosbags_typesys.Stores, store))
    for name, text in MSG_DEFINITIONS.items():
        ts.register(rosbags_typesys.get_types_from_msg(text, name))
    return ts


@pytest.fixture(scope="module", params=["ROS2_HUMBLE", "ROS2_JAZZY"])
def ts(request: pytest.FixtureRequest) -> Any:
    return typestore(request.param)


class Filler:
    """Deterministic, non-trivial values for any ROS type, driven by rosbags' (independent) field definitions."""

    def __init__(self, ts: Any, seq_len: int) -> None:
        self.ts, self.seq_len, self.count = ts, seq_len, itertools.count(1)

    def base(self, typ: str) -> Any:
        k = next(self.count)
        if typ == "string":
            return f"s{k}_é"  # non-ASCII: UTF-8 byte length must be used
        if typ == "bool":
            return k % 2 == 1
        if typ.startswith("float"):
            return k * 0.5 + 0.25 if typ == "float32" else k * 1.1
        if typ.startswith("int"):
            return -k
        return k % 200  # unsigned, fits uint8

    def ours(self, ros_name: str) -> tuple[Any, Any]:
        """(our IDL instance, the rosbags instance) holding the same values."""
        _, fields = self.ts.fielddefs[ros_name]
        ours, theirs = {}, {}
        for fname, (kind, spec) in fields:
            ours[fname], theirs[fname] = self.value(kind, spec)
        return BY_NAME[ros_name](**ours), self.ts.types[ros_name](**theirs)

    def value(self, kind: Any, spec: Any) -> tuple[Any, Any]:
        if kind == NT.BASE:
            v = self.base(spec[0])
            return v, v
        if kind == NT.NAME:
            return self.ours(spec)
        (ekind, espec), n = spec
        n = n or self.seq_len
        if ekind == NT.BASE and espec[0] != "string":
            vals = [self.base(espec[0]) for _ in range(n)]
            arr = np.array(vals, dtype=_NP[espec[0]])
            return (bytes(arr) if espec[0] == "uint8" else vals), arr
        pairs = [self.value(ekind, espec) for _ in range(n)]
        return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.mark.parametrize("msg_type", ALL_TYPES, ids=ros_type_name)
@pytest.mark.parametrize("seq_len", [0, 3])
def test_golden_bytes(ts: Any, msg_type: type, seq_len: int) -> None:
    name = ros_type_name(msg_type)
    ours, theirs = Filler(ts, seq_len).ours(name)
    golden = bytes(ts.serialize_cdr(theirs, name))
    mine = ours.serialize(use_version_2=False)
    assert mine == golden, f"{name}: ours {mine.hex()} != rosbags {golden.hex()}"
    back = ts.deserialize_cdr(mine, name)  # rosbags decodes ours...
    assert bytes(ts.serialize_cdr(back, name)) == golden
    assert msg_type.deserialize(golden) == ours  # ...and we decode theirs


def test_type_names_and_hashes() -> None:
    ts = typestore("ROS2_JAZZY")
    assert dds_type_name(JointState) == "sensor_msgs::msg::dds_::JointState_"
    for msg_type in ALL_TYPES:
        name = ros_type_name(msg_type)
        assert msg_type.__idl_typename__.split(".")[:3] == [name.split("/")[0], "msg", "dds_"]
        assert TYPE_HASHES[name] == ts.hash_rihs01(name), name
        assert user_data(name) == f"typehash={ts.hash_rihs01(name)};".encode()
    for msg_type in ALL_TYPES:  # ROS 2 types are @final (plain CDR), never appendable/mutable
        assert msg_type.__idl_annotations__.get("extensibility", "final") == "final", msg_type


def test_bytes_fields_and_xcdr1_header() -> None:
    img = convert.image_msg(np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3), stamp=1.5, frame_id="cam")
    raw = img.serialize(use_version_2=False)
    assert raw[:4] == b"\x00\x01\x00\x00"  # CDR_LE, plain XCDR1 encapsulation as ROS 2 uses
    fields = {f.name: f.type for f in dataclasses.fields(Image)}
    assert fields["data"] is bytes


def test_realistic_joint_state_and_image_match(ts: Any) -> None:
    names = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]
    q = np.linspace(-1, 1, 9)
    js = convert.joint_state_msg(names, q, q * 2, q * 3, stamp=12.000000001, frame_id="")
    types = ts.types
    golden = types["sensor_msgs/msg/JointState"](
        header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=12, nanosec=1), frame_id=""),
        name=names, position=q, velocity=q * 2, effort=q * 3)
    assert js.serialize(use_version_2=False) == bytes(ts.serialize_cdr(golden, "sensor_msgs/msg/JointState"))
    pos, _, eff = convert.joint_state_arrays(js, names[::-1])
    np.testing.assert_array_equal(pos, q[::-1])
    np.testing.assert_array_equal(eff, 3 * q[::-1])
    with pytest.raises(ValueError, match="lacks joints"):
        convert.joint_state_arrays(js, ["nope"])
    rgb = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    img = convert.image_msg(rgb, stamp=3.0, frame_id="front")
    back = ts.deserialize_cdr(img.serialize(use_version_2=False), "sensor_msgs/msg/Image")
    assert back.encoding == "rgb8" and back.step == 224 * 3
    np.testing.assert_array_equal(back.data.reshape(224, 224, 3), rgb)
    np.testing.assert_array_equal(convert.image_array(back), rgb)  # the reader takes rosbags' (numpy) messages too
    np.testing.assert_array_equal(convert.image_array(Image.deserialize(img.serialize())), rgb)


def test_conversion_helpers_round_trip() -> None:
    pose = np.array([0.5, -0.1, 0.3, 0.7071, 0.0, 0.7071, 0.0])
    msg = convert.pose_msg(pose, stamp=2.25, frame_id="world")
    assert msg.pose.orientation.w == pytest.approx(0.7071) and msg.pose.orientation.y == pytest.approx(0.7071)
    np.testing.assert_array_equal(convert.pose_array(msg), pose)
    assert convert.from_stamp(msg.header.stamp) == 2.25
    padded = Image(height=2, width=2, encoding="mono8", step=4, data=bytes(range(8)))  # rows padded to 4 bytes
    np.testing.assert_array_equal(convert.image_array(padded)[:, :, 0], [[0, 1], [4, 5]])
    with pytest.raises(ValueError, match="does not fit"):
        convert.image_array(Image(height=4, width=4, encoding="rgb8", step=12, data=b"\x00" * 10))
    with pytest.raises(ValueError, match="unsupported image encoding"):
        convert.image_array(Image(height=1, width=1, encoding="yuv422", step=2, data=b"\x00\x00"))
    v = np.arange(5.0)
    np.testing.assert_array_equal(convert.float_array(convert.float_array_msg(v)), v)
    info = convert.camera_info_msg(84, 84, 45.0)
    assert info.k[0] == pytest.approx(42.0 / np.tan(np.radians(22.5)))
    pos, vel, _ = convert.joint_state_arrays(JointState(name=["a"], position=[1.0]))
    assert pos[0] == 1.0 and np.isnan(vel[0])


def test_joint_state_fast_codec_matches_the_generic_one() -> None:
    from hardware.ros.fastcdr import decode_joint_state, encode_joint_state

    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 9):
        for frame in ("", "b", "base_link"):
            js = convert.joint_state_msg([f"j{'x' * i}" for i in range(n)], rng.normal(size=n),
                                         rng.normal(size=n) if n % 2 else None, None, stamp=rng.uniform(0, 1e4),
                                         frame_id=frame)
            generic = JointState.__idl__.serialize(js, use_version_2=False)  # cyclonedds' own machinery
            assert encode_joint_state(js) == js.serialize() == generic
            assert decode_joint_state(generic, JointState) == JointState.__idl__.deserialize(generic) == js
    full = convert.joint_state_msg(["a", "bb"], np.ones(2), np.ones(2), np.ones(2)).serialize()
    for cut in range(len(full) - 1):  # every truncation is refused, none decodes to a wrong message
        with pytest.raises((ValueError, struct.error)):
            decode_joint_state(full[:cut], JointState)
