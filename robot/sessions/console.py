"""StatusLine: one live status line for the operator (rewritten in place on a tty, periodic lines otherwise)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TextIO


class StatusLine:
    """One line of live status for an operator loop (collect, deploy).

    On a terminal the line is rewritten in place with a carriage return at most every `min_interval_s`;
    `print()` puts a permanent message above it. When the stream is not a terminal (a log file, CI, a pipe) the
    status is written as a plain line every `plain_interval_s` instead, so logs stay readable. Never raises on a
    closed or broken stream: the loop it reports on matters more than the report.
    """

    def __init__(self, stream: TextIO | None = None, *, min_interval_s: float = 0.1,
                 plain_interval_s: float = 5.0, is_tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if is_tty is None:
            try:
                is_tty = self.stream.isatty()
            except (AttributeError, ValueError, OSError):
                is_tty = False
        self.is_tty = bool(is_tty)
        self.min_interval_s = min_interval_s
        self.plain_interval_s = plain_interval_s
        self._last = -float("inf")
        self._text = ""
        self._shown = False

    def _width(self) -> int:
        try:
            return max(20, os.get_terminal_size(self.stream.fileno()).columns - 1)
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size((100, 24)).columns - 1

    def _write(self, s: str) -> None:
        try:
            self.stream.write(s)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def update(self, text: str, *, force: bool = False) -> bool:
        """Show `text` as the current status (throttled unless force); returns whether it was written."""
        self._text = text
        now = time.monotonic()
        interval = self.min_interval_s if self.is_tty else self.plain_interval_s
        if not force and now - self._last < interval:
            return False
        self._last = now
        if self.is_tty:
            # \x1b[K clears what a longer previous line left; cut to the width so the line never wraps.
            self._write("\r" + text[: self._width()] + "\x1b[K")
            self._shown = True
        else:
            self._write(text + "\n")
        return True

    def print(self, message: str) -> None:
        """A permanent line (an event, a saved episode), with the status redrawn below it on a tty."""
        if self.is_tty:
            self._write("\r\x1b[K" + message + "\n")
            if self._text:
                self._write(self._text[: self._width()] + "\x1b[K")
        else:
            self._write(message + "\n")

    def close(self) -> None:
        """End the live line (the cursor moves to a fresh line)."""
        if self.is_tty and self._shown:
            self._write("\n")
            self._shown = False
