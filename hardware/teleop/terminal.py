"""TerminalKeys: key presses from a terminal (stdin or any tty fd) in cbreak mode, decoded to key names."""

from __future__ import annotations

import codecs
import os
import select
import sys
import termios
import time
import tty
from types import TracebackType
from typing import Any

from robot.core.errors import DeviceError

ESC_TIMEOUT_S = 0.05
"""A lone ESC byte is reported as "esc" once no sequence byte has followed it for this long."""

# CSI (ESC [) and SS3 (ESC O) final bytes of the keys we name; xterm, VTE, tmux and the Linux console agree.
_CURSOR = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end"}
_TILDE = {"1": "home", "2": "insert", "3": "delete", "4": "end", "5": "pageup", "6": "pagedown", "7": "home",
          "8": "end"}
_CONTROL = {"\r": "enter", "\n": "enter", " ": "space", "\x7f": "backspace", "\x08": "backspace", "\t": "tab"}


class TerminalKeys:
    """Puts a tty into cbreak mode (no line buffering, no echo; ISIG stays so Ctrl-C still interrupts) and
    restores its exact previous mode on exit, also when the block raises.

    `read()` never blocks: it returns the keys typed since the last call, in order, as names: "up", "down",
    "left", "right", "enter", "space", "backspace", "tab", "esc", "home", "end", "delete", ... or the character
    itself ("w", "W", ".", "0", "é"). Unknown escape sequences (function keys) are consumed and dropped. Terminals
    send no key-release: a held key arrives as a press followed by autorepeats.
    """

    def __init__(self, fd: int | None = None) -> None:
        self._fd_arg = fd
        self.fd = -1
        self._saved: list[Any] | None = None
        self._pending = ""
        self._pending_since = 0.0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def active(self) -> bool:
        """Whether the terminal is in cbreak mode (inside the context)."""
        return self._saved is not None

    def __enter__(self) -> TerminalKeys:
        fd = self._fd_arg
        if fd is None:
            try:
                fd = sys.stdin.fileno()
            except (AttributeError, ValueError, OSError):
                fd = -1
        if fd < 0 or not os.isatty(fd):
            raise DeviceError(
                "keyboard teleop needs an interactive terminal, but stdin is not a tty (piped, redirected or run "
                "from a service). Run the command in a terminal (over SSH use `ssh -t`), or pick another device: "
                "--device spacemouse|gamepad|replay|ros"
            )
        try:
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)  # clears ICANON and ECHO only: ISIG (Ctrl-C) keeps working
        except termios.error as e:
            self._saved = None
            raise DeviceError(f"cannot switch tty fd {fd} to cbreak mode ({e}); run in a regular terminal") from e
        self.fd = fd
        self._pending = ""
        self._decoder.reset()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Restore the terminal mode saved on entry (idempotent)."""
        saved, self._saved = self._saved, None
        if saved is not None:
            # TCSAFLUSH would also drop typed-ahead input that belongs to the shell; TCSADRAIN keeps it.
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def read(self) -> list[str]:
        """Keys typed since the last call (never blocks)."""
        if self._saved is None:
            raise DeviceError("TerminalKeys.read() outside its `with` block: enter the context first")
        chunks: list[bytes] = []
        while select.select([self.fd], [], [], 0.0)[0]:
            try:
                data = os.read(self.fd, 1024)
            except BlockingIOError:
                break
            except OSError as e:  # EIO: the terminal (or pty master) went away
                raise DeviceError(f"reading the terminal failed ({e}); the session lost its tty") from e
            if not data:
                break
            chunks.append(data)
        if chunks:
            self._pending += self._decoder.decode(b"".join(chunks))
            self._pending_since = time.monotonic()
        keys, self._pending = decode_keys(self._pending, final=time.monotonic() - self._pending_since > ESC_TIMEOUT_S)
        return keys


def decode_keys(text: str, final: bool = True) -> tuple[list[str], str]:
    """Split terminal input into key names; returns (keys, undecoded tail). With final=False an escape sequence
    cut short at the end of `text` is kept as the tail (its remaining bytes may still be on the way); with
    final=True a trailing lone ESC is the Esc key."""
    keys: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\x1b":
            keys.append(_CONTROL.get(c, c))
            i += 1
            continue
        if i + 1 >= n:
            if not final:
                return keys, text[i:]
            keys.append("esc")
            i += 1
            continue
        intro = text[i + 1]
        if intro == "O":  # SS3: ESC O <final>, what cursor keys send in application mode
            if i + 2 >= n:
                if not final:
                    return keys, text[i:]
                keys.append("esc")
                i += 1
                continue
            name = _CURSOR.get(text[i + 2])
            if name:
                keys.append(name)
            i += 3
            continue
        if intro == "[":  # CSI: ESC [ <parameter bytes 0x30-0x3f>* <intermediate 0x20-0x2f>* <final 0x40-0x7e>
            j = i + 2
            while j < n and not "\x40" <= text[j] <= "\x7e":
                j += 1
            if j >= n:
                if not final:
                    return keys, text[i:]
                keys.append("esc")  # a cut sequence with no more bytes coming: report Esc, drop the rest
                i = n
                continue
            params, fin = text[i + 2 : j], text[j]
            name = _TILDE.get(params.split(";")[0]) if fin == "~" else _CURSOR.get(fin)
            if name:
                keys.append(name)
            i = j + 1
            continue
        keys.append("esc")  # ESC + another key: Esc, then that key (Alt+key arrives this way too)
        i += 1
    return keys, ""
