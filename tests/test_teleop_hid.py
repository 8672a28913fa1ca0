"""SpaceMouse (hidraw reports) and gamepad (evdev input_event records) parsing on raw byte fixtures built from the
documented formats, read through real file descriptors standing in for /dev/hidraw* and /dev/input/event*; device
discovery in a fake sysfs; absent-device errors."""

import os
import socket
import struct
from pathlib import Path

import numpy as np
import pytest

from hardware.teleop.gamepad import (
    ABS_HAT0Y,
    ABS_RX,
    ABS_RY,
    ABS_X,
    ABS_Y,
    ABS_Z,
    BTN_A,
    BTN_B,
    BTN_START,
    BTN_TR,
    EV_ABS,
    EV_KEY,
    EV_SYN,
    SYN_DROPPED,
    GamepadConfig,
    GamepadTeleop,
    find_gamepad,
)
from hardware.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop, find_spacemouse, parse_report
from robot.core.errors import ConfigError, DeviceError
from robot.core.types import TeleopEvent


# -- SpaceMouse ----------------------------------------------------------------------------------------------------
def translation(x: int, y: int, z: int) -> bytes:
    """Report 1, 6-byte payload: x, y, z as int16 little-endian (HID frame: x right, y toward the user, z down)."""
    return struct.pack("<B3h", 1, x, y, z)


def rotation(rx: int, ry: int, rz: int) -> bytes:
    return struct.pack("<B3h", 2, rx, ry, rz)


def both(x: int, y: int, z: int, rx: int, ry: int, rz: int) -> bytes:
    """Report 1, 12-byte payload (SpaceMouse Wireless / Pro Wireless / Enterprise)."""
    return struct.pack("<B6h", 1, x, y, z, rx, ry, rz)


def buttons(mask: int, n_bytes: int = 1) -> bytes:
    return bytes([3]) + mask.to_bytes(n_bytes, "little")


def test_parse_documented_report_layouts() -> None:
    r = parse_report(b"\x01\x5e\x01\xa2\xfe\x00\x00")  # report 1: x=350, y=-350, z=0
    assert r is not None and r.translation == (350, -350, 0)
    r = parse_report(both(1, -2, 3, -4, 5, -6))
    assert r is not None and r.translation == (1, -2, 3) and r.rotation == (-4, 5, -6)
    r = parse_report(rotation(10, 20, -30))
    assert r is not None and r.rotation == (10, 20, -30) and r.translation is None
    r = parse_report(buttons(0b10))
    assert r is not None and r.buttons == 2
    assert parse_report(bytes([0x17, 100])) is None  # battery report of a wireless model
    assert parse_report(b"") is None and parse_report(b"\x01\x00") is None  # truncated


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def hid() -> tuple[SpaceMouseTeleop, socket.socket, Clock]:
    """A SEQPACKET socket pair keeps report boundaries like a hidraw node: one report per read."""
    dev_end, test_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dev_end.setblocking(False)
    clock = Clock()
    sm = SpaceMouseTeleop(SpaceMouseConfig(deadband=0.1), fd=dev_end.detach(), clock=clock)
    sm.connect()
    yield sm, test_end, clock
    sm.disconnect()
    test_end.close()


def test_spacemouse_axis_mapping_deadband_and_scale(hid: tuple[SpaceMouseTeleop, socket.socket, Clock]) -> None:
    sm, w, _ = hid
    assert sm.read().action.tolist() == [0, 0, 0, 0, 0, 0, -1]
    # Cap pushed away from the operator (-y raw), to the left (-x raw), lifted (-z raw): +x, +y, +z for the robot.
    w.send(translation(-175, -350, -700))
    w.send(rotation(0, 0, 0))
    a = sm.read().action
    # normalized 0.5 / 1.0 / 2.0 (clipped to 1), after a 0.1 deadband rescaled to span [0, 1]
    np.testing.assert_allclose(a[:3], [1.0, (0.5 - 0.1) / 0.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(a[3:6], 0.0)
    w.send(translation(20, -20, 30))  # inside the deadband: nothing moves
    w.send(rotation(-350, 0, 175))  # tilt about the raw x axis (the robot's -y: +ry for it) and twist (-rz)
    a = sm.read().action
    np.testing.assert_allclose(a[:3], 0.0)
    np.testing.assert_allclose(a[3:6], [0.0, 1.0, -(0.5 - 0.1) / 0.9], rtol=1e-6)
    w.send(both(0, 0, 0, 0, -350, 0))  # a 12-byte report carries both halves
    np.testing.assert_allclose(sm.read().action[:6], [0, 0, 0, 1.0, 0, 0], rtol=1e-6)


def test_spacemouse_buttons_gripper_intervene_and_stale_link(
        hid: tuple[SpaceMouseTeleop, socket.socket, Clock]) -> None:
    sm, w, clock = hid
    w.send(buttons(0b01))  # left pressed: gripper closes
    cmd = sm.read()
    assert cmd.action[6] == 1.0 and not cmd.events
    w.send(buttons(0b00))
    w.send(buttons(0b10))  # right pressed: INTERVENE
    cmd = sm.read()
    assert cmd.events == {TeleopEvent.INTERVENE} and cmd.action[6] == 1.0
    w.send(buttons(0b11))  # left pressed again while right is held: gripper opens, no second INTERVENE
    cmd = sm.read()
    assert cmd.events == frozenset() and cmd.action[6] == -1.0
    w.send(translation(0, -350, 0))
    assert sm.read().action[0] == 1.0
    clock.t += 0.6  # no report for longer than stale_s while deflected: the link dropped, stop
    assert sm.read().action[0] == 0.0
    w.send(translation(0, -350, 0))
    assert sm.read().action[0] == 1.0
    sm.reset_state()
    assert sm.read().action[6] == -1.0


def test_spacemouse_deadman_and_extra_button_events() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.setblocking(False)
    sm = SpaceMouseTeleop(SpaceMouseConfig(deadman_button=1, intervene_button=None, button_events=((12, "start"),)),
                          fd=a.detach())
    try:
        assert not sm.read().active
        b.send(buttons(0b10, 2))
        assert sm.read().active
        b.send(buttons(0b1_0000_0000_0010, 2))
        assert sm.read().events == {TeleopEvent.START}
    finally:
        sm.disconnect()
        b.close()
    with pytest.raises(ConfigError, match="permutation"):
        SpaceMouseConfig(axes=(0, 0, 1, 2, 3, 4))
    with pytest.raises(ConfigError, match="unknown teleop event 'launch'"):
        SpaceMouseConfig(button_events=((3, "launch"),))


def fake_hidraw(sysfs: Path, name: str, hid_id: str, hid_name: str) -> None:
    d = sysfs / "class" / "hidraw" / name / "device"
    d.mkdir(parents=True)
    (d / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME={hid_name}\nHID_PHYS=usb-0000:00:14.0\n")


def test_spacemouse_found_in_sysfs_and_opened_by_path(tmp_path: Path) -> None:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    fake_hidraw(sysfs, "hidraw0", "0003:0000046D:0000C52B", "Logitech USB Receiver")  # a Logitech mouse: not it
    fake_hidraw(sysfs, "hidraw1", "0003:0000256F:0000C635", "3Dconnexion SpaceMouse Compact")
    assert find_spacemouse(sysfs, dev) == dev / "hidraw1"
    (dev / "hidraw1").write_bytes(translation(0, 0, -350))  # a regular file: one read, one report
    sm = SpaceMouseTeleop(sysfs=sysfs, dev=dev)
    sm.connect()
    try:
        assert sm.path == str(dev / "hidraw1")
        np.testing.assert_allclose(sm.read().action[:3], [0, 0, 1.0])
    finally:
        sm.disconnect()
    fake_hidraw(sysfs, "hidraw2", "0003:0000046D:0000C626", "3Dconnexion SpaceNavigator")
    (sysfs / "class" / "hidraw" / "hidraw1" / "device" / "uevent").unlink()
    assert find_spacemouse(sysfs, dev) == dev / "hidraw2"  # an older device under Logitech's vendor id


def test_spacemouse_absent_is_a_device_error_saying_what_to_do(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    fake_hidraw(sysfs, "hidraw0", "0003:0000046D:0000C52B", "Logitech USB Receiver")
    with pytest.raises(DeviceError, match=r"no 3Dconnexion SpaceMouse found.*hidraw0 \(046d:c52b.*--spacemouse.path"):
        SpaceMouseTeleop(sysfs=sysfs, dev=tmp_path).connect()
    with pytest.raises(DeviceError, match="hidraw7 does not exist"):
        SpaceMouseTeleop(SpaceMouseConfig(path=str(tmp_path / "hidraw7"))).connect()
    if os.geteuid() != 0:  # root opens anything: the permission path only exists for users
        locked = tmp_path / "hidraw8"
        locked.write_bytes(b"")
        locked.chmod(0)
        with pytest.raises(DeviceError, match=r"permission denied.*udev"):
            SpaceMouseTeleop(SpaceMouseConfig(path=str(locked))).connect()


# -- gamepad -------------------------------------------------------------------------------------------------------
def ev(etype: int, code: int, value: int, t: float = 1.0) -> bytes:
    """struct input_event: timeval (tv_sec, tv_usec as C longs), type, code, value."""
    return struct.pack("@llHHi", int(t), int(t % 1 * 1e6), etype, code, value)


SYN = ev(EV_SYN, 0, 0)


@pytest.fixture
def pad(tmp_path: Path) -> tuple[GamepadTeleop, int]:
    """A FIFO stands in for /dev/input/eventN: opened by path, a byte stream of input_event records."""
    fifo = tmp_path / "event5"
    os.mkfifo(fifo)
    gp = GamepadTeleop(GamepadConfig(path=str(fifo), deadband=0.1))
    gp.connect()
    w = os.open(fifo, os.O_WRONLY)
    yield gp, w
    gp.disconnect()
    os.close(w)


def test_gamepad_sticks_dpad_triggers_deadband(pad: tuple[GamepadTeleop, int]) -> None:
    gp, w = pad
    assert gp.read().action.tolist() == [0, 0, 0, 0, 0, 0, -1]
    assert gp.ranges[ABS_X] == (-32768, 32767)  # EVIOCGABS fails on a FIFO: the usual xpad ranges
    # Left stick fully up (evdev y points down) and half left; right stick up a little (inside the deadband).
    os.write(w, ev(EV_ABS, ABS_Y, -32768) + ev(EV_ABS, ABS_X, -16384) + ev(EV_ABS, ABS_RY, -1000) + SYN)
    a = gp.read().action
    np.testing.assert_allclose(a[:3], [1.0, (0.5 - 0.1) / 0.9, 0.0], atol=1e-4)
    os.write(w, ev(EV_ABS, ABS_HAT0Y, -1) + ev(EV_ABS, ABS_RX, 32767) + SYN)  # d-pad up, right stick right
    a = gp.read().action
    np.testing.assert_allclose(a[3:6], [0.0, 1.0, -1.0], atol=1e-4)
    # One record split across two writes (a reader may see half a record): nothing is lost or misread.
    rec = ev(EV_ABS, ABS_Y, 0)
    os.write(w, rec[:10])
    assert gp.read().action[0] == pytest.approx(1.0)
    os.write(w, rec[10:] + SYN)
    assert gp.read().action[0] == 0.0


def test_gamepad_buttons_events_gripper_and_deadman(tmp_path: Path) -> None:
    stream = b"".join([ev(EV_KEY, BTN_A, 1), SYN, ev(EV_KEY, BTN_A, 2), SYN,  # 2 = autorepeat: not a new press
                       ev(EV_KEY, BTN_A, 0), ev(EV_KEY, BTN_START, 1), ev(EV_KEY, BTN_B, 1), SYN,
                       ev(EV_KEY, BTN_TR, 1), SYN])
    recorded = tmp_path / "recorded-events.bin"  # a recorded evdev stream replayed from a file
    recorded.write_bytes(stream)
    gp = GamepadTeleop(GamepadConfig(path=str(recorded), deadman_button=BTN_TR,
                                     buttons=((BTN_A, "gripper"), (BTN_START, "start"), (BTN_B, "estop"))))
    try:
        cmd = gp.read()
        assert cmd.action[6] == 1.0  # one toggle despite the autorepeat record
        assert cmd.events == {TeleopEvent.START, TeleopEvent.ESTOP}
        assert cmd.active  # deadman held
    finally:
        gp.disconnect()


def test_gamepad_syn_dropped_stops_motion_until_fresh_axes(pad: tuple[GamepadTeleop, int]) -> None:
    gp, w = pad
    os.write(w, ev(EV_ABS, ABS_Y, -32768) + SYN)
    assert gp.read().action[0] == pytest.approx(1.0)
    os.write(w, ev(EV_SYN, SYN_DROPPED, 0))
    assert gp.read().action[0] == 0.0
    os.write(w, ev(EV_ABS, ABS_Y, -32768) + SYN)
    assert gp.read().action[0] == pytest.approx(1.0)


def test_gamepad_trigger_axis_normalizes_from_rest() -> None:
    cfg = GamepadConfig(axes=((ABS_Z, 2, 1.0),), deadband=0.0)
    r, w = os.pipe()
    os.set_blocking(r, False)
    gp = GamepadTeleop(cfg, fd=r)
    try:
        gp.connect()
        os.write(w, ev(EV_ABS, ABS_Z, 0) + SYN)
        assert gp.read().action[2] == 0.0  # a released trigger is 0, not -1
        os.write(w, ev(EV_ABS, ABS_Z, 1023) + SYN)
        assert gp.read().action[2] == pytest.approx(1.0)
    finally:
        gp.disconnect()
        os.close(w)


def fake_event(sysfs: Path, name: str, caps: str, dev_name: str) -> None:
    d = sysfs / "class" / "input" / name / "device" / "capabilities"
    d.mkdir(parents=True)
    (d / "key").write_text(caps + "\n")
    (d.parent / "name").write_text(dev_name + "\n")


def test_gamepad_discovery_and_absent_device(tmp_path: Path) -> None:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    fake_event(sysfs, "event2", "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe", "AT keyboard")
    with pytest.raises(DeviceError, match=r"no gamepad found.*event2 \(AT keyboard\).*--gamepad.path"):
        find_gamepad(sysfs, dev)
    fake_event(sysfs, "event11", "7cdb000000000000 0 0 0 0", "Microsoft X-Box 360 pad")  # xpad's real mask
    assert find_gamepad(sysfs, dev) == dev / "input" / "event11"
    byid = dev / "input" / "by-id"
    byid.mkdir(parents=True)
    (byid / "usb-Microsoft_Controller-event-joystick").write_bytes(b"")
    assert find_gamepad(sysfs, dev) == byid / "usb-Microsoft_Controller-event-joystick"  # udev's link wins
    with pytest.raises(DeviceError, match="event99 does not exist"):
        GamepadTeleop(GamepadConfig(path=str(tmp_path / "event99"))).connect()
    with pytest.raises(ConfigError, match="each action dimension"):
        GamepadConfig(axes=((ABS_X, 0, 1.0), (ABS_Y, 0, 1.0)))
