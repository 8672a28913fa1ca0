"""Unitree's CRC32 on known vectors (bit-by-bit reference, the catalogue check value, zlib, Unitree's own SDK), the
fast unitree_hg codec against cyclonedds' generic one, and the G1 wire tables against the sim model."""

import struct
import zlib

import numpy as np
import pytest

from hardware.ros.unitree import HandCmd, HandState, LowCmd, LowState, MotorCmd, MotorState, PressSensorState
from hardware.ros.unitree_crc import (
    LOW_CMD_C,
    LOW_STATE_C,
    FixedCrc,
    crc32_core,
    crc32_mpeg2,
    low_cmd_crc,
    low_state_crc,
    pack_low_cmd,
)


def crc_bitwise(words: list[int]) -> int:
    """crc32_core from its definition: register 0xFFFFFFFF; for each bit of each 32-bit word, most significant
    first, shift left, XOR the polynomial 0x04C11DB7 when the bit shifted out differs from the data bit."""
    crc = 0xFFFFFFFF
    for word in words:
        for bit in range(31, -1, -1):
            feedback = ((crc >> 31) ^ (word >> bit)) & 1
            crc = (crc << 1) & 0xFFFFFFFF
            if feedback:
                crc ^= 0x04C11DB7
    return crc


def reflect(value: int, bits: int) -> int:
    return int(f"{value:0{bits}b}"[::-1], 2)


def test_crc_matches_the_definition_the_catalogue_and_zlib() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # CRC-32/MPEG-2 check value (reveng catalogue)
    assert crc32_mpeg2(b"") == 0xFFFFFFFF
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 64):
        words = rng.integers(0, 2**32, n, dtype=np.uint64).tolist()
        assert crc32_core(words) == crc_bitwise(words)
    # zlib's CRC-32 is the same polynomial with reflected input/output and a final XOR: an independent
    # implementation that must agree once the bit orders are undone.
    for n in (4, 13, 1000):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        flipped = bytes(reflect(b, 8) for b in data)
        assert crc32_mpeg2(data) == reflect(zlib.crc32(flipped) ^ 0xFFFFFFFF, 32)
    with pytest.raises(ValueError, match="32-bit"):
        crc32_core([2**32])


def test_fixed_length_crc_is_crc32_core_over_little_endian_words() -> None:
    rng = np.random.default_rng(1)
    for n_bytes in (4, 40, 1000):
        f = FixedCrc(n_bytes)
        for _ in range(3):
            buf = rng.integers(0, 256, n_bytes + 4, dtype=np.uint8).tobytes()
            words = list(struct.unpack(f"<{n_bytes // 4}I", buf[:n_bytes]))
            assert f(buf) == crc32_core(words) == crc_bitwise(words)
    with pytest.raises(ValueError, match="whole 32-bit words"):
        FixedCrc(6)
    with pytest.raises(ValueError, match="shorter"):
        FixedCrc(8)(b"\x00" * 4)


def rich_low_cmd() -> LowCmd:
    c = LowCmd(mode_pr=0, mode_machine=5, reserve=[1, 2, 3, 0xDEADBEEF])
    for i, m in enumerate(c.motor_cmd):
        m.mode = 1 if i < 29 else 0
        m.q, m.dq, m.tau = -1.5 + 0.1 * i, 0.01 * i, -0.25 * (i % 3)
        m.kp, m.kd, m.reserve = 40.0 + i, 1.0 + 0.05 * i, i * 7
    return c


def rich_low_state() -> LowState:
    s = LowState(version=[1, 2], mode_pr=1, mode_machine=5, tick=123456, wireless_remote=bytes(range(40)),
                 reserve=[4, 3, 2, 1])
    imu = s.imu_state
    imu.quaternion, imu.gyroscope, imu.accelerometer = [1.0, 0.0, 0.0, 0.0], [0.1, -0.2, 0.3], [0.0, 0.0, 9.81]
    imu.rpy, imu.temperature = [0.01, 0.02, -0.03], -12
    for i, m in enumerate(s.motor_state):
        m.mode, m.q, m.dq, m.ddq, m.tau_est = 1, 0.05 * i - 0.7, -0.01 * i, 0.5, 0.2 * (i % 5) - 0.4
        m.temperature, m.vol, m.sensor, m.motorstate, m.reserve = [30 + i, -i], 48.5, [i, 2 * i], i % 4, [0, i, 0, 9]
    return s


def test_crc_matches_unitree_sdk_vectors() -> None:
    """Vectors computed with Unitree's own Python SDK (PyPI `unitree_sdk2` 1.0.1, `unitree_sdk2py.utils.crc.CRC`,
    its pure-Python crc32_core over its struct.pack C layouts) for the same field values."""
    assert low_cmd_crc(LowCmd()) == 4262932383
    c = LowCmd(mode_pr=1)  # the frame of strands-labs/robots issue 2765: q = 0.1 i on the 29 body motors
    for i in range(29):
        c.motor_cmd[i].q = 0.1 * i
    assert low_cmd_crc(c) == 1479217965
    assert low_cmd_crc(rich_low_cmd()) == 762967804
    assert low_state_crc(rich_low_state()) == 887841716


def test_crc_covers_the_c_struct_not_the_cdr_bytes() -> None:
    assert (LOW_CMD_C.itemsize, LOW_STATE_C.itemsize) == (1004, 2092)  # the SDK's sizeof(LowCmd_), sizeof(LowState_)
    assert LOW_CMD_C.fields is not None and LOW_CMD_C.fields["motor_cmd"][1] == 4  # 2 padding bytes in C, none in CDR
    c = rich_low_cmd()
    words = list(struct.unpack("<251I", pack_low_cmd(c).tobytes()))
    assert low_cmd_crc(c) == crc_bitwise(words[:250])  # every word but the crc itself
    c.crc = 12345  # the crc field is not part of its own checksum
    assert low_cmd_crc(c) == crc_bitwise(words[:250])
    c.motor_cmd[20].kd += 1e-3  # any field change changes it
    assert low_cmd_crc(c) != crc_bitwise(words[:250])
    cdr = LowCmd.__idl__.serialize(rich_low_cmd(), use_version_2=False)[4:]
    assert FixedCrc(1000)(cdr) != low_cmd_crc(rich_low_cmd())  # the wire bytes are not what the SDK checksums


def hand_state() -> HandState:
    rng = np.random.default_rng(2)
    motors = [MotorState(mode=i, q=float(rng.normal()), dq=-1.5, ddq=0.25, tau_est=0.5, temperature=[40, -3],
                         vol=24.0, sensor=[i, 7], motorstate=3, reserve=[1, 2, 3, 4]) for i in range(7)]
    press = [PressSensorState(pressure=[float(k) for k in range(12)], temperature=[30.5] * 12) for _ in range(9)]
    hs = HandState(motor_state=motors, press_sensor_state=press, power_v=24.5, power_a=0.75, system_v=5.0,
                   device_v=3.3, error=[1, 2], reserve=[9, 8])
    hs.imu_state.temperature, hs.imu_state.rpy = -7, [0.5, 0.25, 0.125]
    return hs


@pytest.mark.parametrize("make", [LowCmd, rich_low_cmd, LowState, rich_low_state, HandCmd, hand_state,
                                  lambda: HandCmd(motor_cmd=[MotorCmd(kp=2.5)] * 3),
                                  lambda: HandState(motor_state=[], press_sensor_state=[])],
                         ids=["lowcmd", "lowcmd_rich", "lowstate", "lowstate_rich", "handcmd", "handstate",
                              "handcmd_3", "handstate_empty"])
def test_fast_codec_matches_cyclonedds(make: object) -> None:
    msg = make()  # type: ignore[operator]
    cls = type(msg)
    generic = cls.__idl__.serialize(msg, use_version_2=False)  # cyclonedds' own machinery
    assert msg.serialize() == generic
    back = cls.deserialize(generic)
    assert back == cls.__idl__.deserialize(generic)  # the same Python values (floats rounded to float32)
    assert back.serialize() == generic
    for cut in (4, len(generic) // 2, len(generic) - 1):  # a truncated sample is refused, never misread
        with pytest.raises((ValueError, struct.error)):
            cls.deserialize(generic[:cut])


def test_g1_wire_tables_match_the_model() -> None:
    """The hardware side's motor order and limits (it must not import sim/) against the sim's and the model's."""
    from hardware.unitree_g1 import BODY_JOINTS, BODY_LIMITS, HAND_JOINTS, HAND_LIMITS, dex3_mode
    from sim.g1 import DEX3_MOTORS, G1_MOTORS, _joint_limits

    assert tuple(name for _, name in G1_MOTORS) == BODY_JOINTS
    for side in ("left", "right"):
        assert set(HAND_JOINTS[side]) == {name for _, name in DEX3_MOTORS[side]}
    model = _joint_limits()
    np.testing.assert_allclose(BODY_LIMITS, [model[j][:2] for j in BODY_JOINTS], atol=1e-6)
    for side in ("left", "right"):
        np.testing.assert_allclose(HAND_LIMITS[side], [model[j][:2] for j in HAND_JOINTS[side]], atol=1e-6)
    assert HAND_JOINTS["left"][3:5] == ("left_hand_middle_0_joint", "left_hand_middle_1_joint")
    assert HAND_JOINTS["right"][3:5] == ("right_hand_index_0_joint", "right_hand_index_1_joint")
    assert dex3_mode(3) == 0x13 and dex3_mode(6, timeout=True) == 0x96  # id | status << 4 | timeout << 7
