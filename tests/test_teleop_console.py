"""StatusLine: rewritten in place on a terminal, periodic plain lines otherwise."""

import io
import os
import time

from robot.sessions.console import StatusLine


def test_tty_rewrites_one_line_and_prints_messages_above_it() -> None:
    out = io.StringIO()
    s = StatusLine(out, is_tty=True, min_interval_s=0.0)
    assert s.update("ep 1 | 20.0 Hz")
    assert s.update("ep 1 | 19.9 Hz")
    s.print("saved episode 0")
    s.close()
    text = out.getvalue()
    assert text.count("\n") == 2  # the message and the final newline: the status itself never adds lines
    assert "\rep 1 | 19.9 Hz\x1b[K" in text
    assert "\r\x1b[Ksaved episode 0\nep 1 | 19.9 Hz" in text


def test_tty_updates_are_throttled() -> None:
    out = io.StringIO()
    s = StatusLine(out, is_tty=True, min_interval_s=10.0)
    assert s.update("a")
    assert not s.update("b")
    assert s.update("c", force=True)
    assert "b" not in out.getvalue()


def test_not_a_tty_writes_plain_periodic_lines() -> None:
    out = io.StringIO()
    s = StatusLine(out, plain_interval_s=0.05)
    assert not s.is_tty  # StringIO is not a terminal
    s.update("first")
    s.update("skipped")
    time.sleep(0.06)
    s.update("second")
    s.print("event")
    s.close()
    assert out.getvalue() == "first\nsecond\nevent\n"
    assert "\r" not in out.getvalue()


def test_real_pty_is_detected_and_a_closed_stream_does_not_raise() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as f:
            s = StatusLine(f)
            assert s.is_tty
            s.update("x")
        s.update("after close", force=True)  # the loop must not die because its log went away
        s.print("after close")
    finally:
        os.close(master)
        os.close(slave)
