"""Keyboard teleop through a real pseudo-terminal: key bytes into the pty master, key names / commands out, and the
tty mode restored afterwards (also on an exception and on Ctrl-C)."""

import os
import signal
import sys
import termios
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hardware.teleop import KeyboardConfig, KeyboardTeleop, KeyMap, TerminalKeys, decode_keys
from robot.core.errors import ConfigError, DeviceError
from robot.core.types import TeleopEvent

LFLAG = 3


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def read_until(keys: TerminalKeys, n: int, timeout: float = 2.0) -> list[str]:
    out: list[str] = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        out += keys.read()
        time.sleep(0.005)
    return out


def test_terminal_keys_decodes_real_key_bytes_and_restores_the_mode(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    assert before[LFLAG] & termios.ICANON and before[LFLAG] & termios.ECHO
    with TerminalKeys(slave) as keys:
        mode = termios.tcgetattr(slave)
        assert not mode[LFLAG] & termios.ICANON and not mode[LFLAG] & termios.ECHO
        assert mode[LFLAG] & termios.ISIG  # Ctrl-C still interrupts
        assert keys.read() == []  # nothing typed: returns at once
        # w, arrows in normal (CSI) and application (SS3) mode, Enter, space, backspace, '.', 'é', Delete, F5
        os.write(master, b"w\x1b[A\x1bOB\x1b[C\x1b[D\r \x7f.\xc3\xa9\x1b[3~\x1b[15~0")
        got = read_until(keys, 11)
    assert got == ["w", "up", "down", "right", "left", "enter", "space", "backspace", ".", "é", "delete", "0"]
    assert termios.tcgetattr(slave) == before


def test_escape_sequence_split_across_reads_and_lone_esc(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    with TerminalKeys(slave) as keys:
        os.write(master, b"\x1b[")
        time.sleep(0.01)
        assert keys.read() == []  # the rest of the sequence may still be on its way
        os.write(master, b"B")
        assert read_until(keys, 1) == ["down"]
        os.write(master, b"\x1b")
        time.sleep(0.01)
        first = keys.read()
        time.sleep(0.08)
        assert first + keys.read() == ["esc"]  # no sequence byte followed: the Esc key


def test_decode_keys_tail_handling() -> None:
    assert decode_keys("a\x1b", final=False) == (["a"], "\x1b")
    assert decode_keys("a\x1b", final=True) == (["a", "esc"], "")
    assert decode_keys("\x1b[1;5A") == (["up"], "")  # Ctrl+Up: modifiers ignored
    assert decode_keys("\x1bw") == (["esc", "w"], "")  # Alt+w


def test_mode_restored_when_the_block_raises(pty_pair: tuple[int, int]) -> None:
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError), TerminalKeys(slave):
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before


def test_not_a_tty_is_a_device_error_saying_what_to_do() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(DeviceError, match=r"not a tty.*--device"), TerminalKeys(r):
            pass
    finally:
        os.close(r)
        os.close(w)


CHILD = r"""
import sys, termios, time
from hardware.teleop import TerminalKeys
fd = sys.stdin.fileno()
try:
    with TerminalKeys() as keys:
        print("READY", flush=True)
        seen = []
        while True:
            seen += keys.read()
            if seen:
                print("KEYS", seen, flush=True)
                seen = []
            time.sleep(0.01)
except KeyboardInterrupt:
    pass
print("ICANON", bool(termios.tcgetattr(fd)[3] & termios.ICANON), flush=True)
sys.stdin.readline()  # stay until the parent has read the line: a pty master loses what a closed slave left
"""


def _read_master(master: int, until: bytes, timeout: float = 20.0) -> bytes:
    import select

    buf = b""
    end = time.monotonic() + timeout
    while until not in buf and time.monotonic() < end:
        if select.select([master], [], [], 0.1)[0]:
            try:
                buf += os.read(master, 4096)
            except OSError:
                break
    return buf


def test_ctrl_c_interrupts_and_the_default_stdin_terminal_is_restored() -> None:
    """A child on a pty as its controlling terminal (like a shell session): keys in, Ctrl-C raises
    KeyboardInterrupt through ISIG, and the terminal is back in canonical mode afterwards."""
    import pty

    pid, master = pty.fork()
    if pid == 0:  # child
        os.environ["PYTHONPATH"] = os.getcwd()
        # A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python then
        # installs no KeyboardInterrupt handler: give the child the default disposition a terminal session has.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, "-c", CHILD])
    try:
        assert b"READY" in _read_master(master, b"READY")
        os.write(master, b"wa")
        assert b"KEYS" in _read_master(master, b"]")
        os.write(master, b"\x03")
        out = _read_master(master, b"ICANON")
        if b"\n" not in out[out.find(b"ICANON"):]:
            out += _read_master(master, b"\n", timeout=5.0)  # the rest of that line
        os.write(master, b"\n")  # canonical mode again: a whole line releases the child
        assert b"ICANON True" in out, out
    finally:
        status = _reap(pid)
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 0


def _reap(pid: int, timeout: float = 10.0) -> int:
    """Wait status of the child; killed first if it is still running after `timeout` (a failed assertion
    above must fail the test, not leave it waiting on a child that waits for input)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def keyboard(slave: int, **kw: object) -> tuple[KeyboardTeleop, Clock]:
    clock = Clock()
    dev = KeyboardTeleop(KeyboardConfig(**kw), fd=slave, clock=clock)  # type: ignore[arg-type]
    dev.connect()
    return dev, clock


def type_and_read(dev: KeyboardTeleop, master: int, data: bytes) -> np.ndarray:
    os.write(master, data)
    time.sleep(0.02)
    return dev.read().action


def test_keyboard_tap_hold_and_release_semantics(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    dev, clock = keyboard(slave, speed=0.5, hold_s=0.6, repeat_hold_s=0.15)
    try:
        a = type_and_read(dev, master, b"w")
        assert a.shape == (7,) and a.dtype == np.float32
        np.testing.assert_allclose(a, [0.5, 0, 0, 0, 0, 0, -1])  # +x at half speed, gripper open
        clock.t += 0.55  # a tap drives its axis for hold_s: it bridges the autorepeat delay
        assert dev.read().action[0] == pytest.approx(0.5)
        clock.t += 0.1
        assert dev.read().action[0] == 0.0  # the nudge is over
        # A held key: press, then autorepeat from 0.5 s at 30 Hz, released at 1.5 s.
        t0 = clock.t
        os.write(master, b"w")
        time.sleep(0.02)
        dev.read()
        moving = []
        for t in np.arange(0.5, 1.5, 1 / 30):  # one repeat per control tick here
            clock.t = t0 + t
            moving.append(type_and_read(dev, master, b"w")[0] > 0)
        assert all(moving)
        last = clock.t
        clock.t = last + 0.1
        time.sleep(0.02)
        assert dev.read().action[0] > 0  # still within repeat_hold_s of the last repeat
        clock.t = last + 0.16
        assert dev.read().action[0] == 0.0  # released: stops within repeat_hold_s, not hold_s
    finally:
        dev.disconnect()


def test_keyboard_axes_reverse_halt_speed_gripper_and_events(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    dev, _ = keyboard(slave, speed=0.4, rotation_speed=0.2)
    try:
        a = type_and_read(dev, master, b"d")
        np.testing.assert_allclose(a[:6], [0, -0.4, 0, 0, 0, 0])
        a = type_and_read(dev, master, b"a")  # the opposite key reverses at once
        np.testing.assert_allclose(a[:6], [0, 0.4, 0, 0, 0, 0])
        a = type_and_read(dev, master, b"Rj")  # upper case works; several axes from separate taps
        np.testing.assert_allclose(a[:6], [0, 0.4, 0.4, 0, 0, 0.2], atol=1e-6)
        a = type_and_read(dev, master, b"h")
        np.testing.assert_allclose(a[:6], 0.0)
        a = type_and_read(dev, master, b"g")
        assert a[6] == 1.0  # gripper closed
        assert type_and_read(dev, master, b"g")[6] == -1.0
        type_and_read(dev, master, b"==")
        assert dev.speed == pytest.approx(0.4 * 1.25**2)
        a = type_and_read(dev, master, b"\x1b[D")  # left arrow = +y
        assert a[1] == pytest.approx(0.625)
        expected = {b"\r": TeleopEvent.START, b".": TeleopEvent.STOP, b" ": TeleopEvent.ESTOP, b"p": TeleopEvent.PAUSE,
                    b"y": TeleopEvent.SUCCESS, b"n": TeleopEvent.FAILURE, b"x": TeleopEvent.DISCARD,
                    b"t": TeleopEvent.INTERVENE, b"0": TeleopEvent.RESET}
        for data, ev in expected.items():
            os.write(master, data)
            time.sleep(0.02)
            cmd = dev.read()
            assert cmd.events == {ev}, data
            assert cmd.active
        os.write(master, b"y.")
        time.sleep(0.02)
        assert dev.read().events == {TeleopEvent.SUCCESS, TeleopEvent.STOP}
        dev.gripper_closed = True
        dev.reset_state()  # at every episode start: gripper open, no motion
        a = dev.read().action
        np.testing.assert_allclose(a, [0, 0, 0, 0, 0, 0, -1])
    finally:
        dev.disconnect()
    assert termios.tcgetattr(slave)[LFLAG] & termios.ICANON


def test_events_only_keyboard_ignores_motion(pty_pair: tuple[int, int]) -> None:
    master, slave = pty_pair
    dev, _ = keyboard(slave, motion=False)
    try:
        os.write(master, b"wg\r")
        time.sleep(0.02)
        cmd = dev.read()
        assert cmd.events == {TeleopEvent.START}
        np.testing.assert_allclose(cmd.action, [0, 0, 0, 0, 0, 0, -1])
    finally:
        dev.disconnect()


def test_keymap_rejects_a_key_with_two_jobs_and_lists_help() -> None:
    with pytest.raises(ConfigError, match="'g' is bound to both gripper and start"):
        KeyMap(start=("g",))
    with pytest.raises(ConfigError, match="'W' is bound to both x_pos and x_neg"):
        KeyMap(x_neg=("W",))
    km = KeyMap()
    assert km.event_bindings()["space"] is TeleopEvent.ESTOP
    assert km.motion_bindings()["w"] == (0, 1.0)
    assert len(set(km.event_bindings().values())) == len(TeleopEvent)  # every event has a key
    assert "E-STOP space" in "\n".join(km.help_lines())
