"""Writing RGB frames to an H.264 mp4 with PyAV."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from robot.core.errors import ConfigError


class VideoWriter:
    """Context manager: `write(frame)` uint8 (H, W, 3) frames at a fixed fps; closes the file on exit."""

    def __init__(self, path: Path | str, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ConfigError(f"video path {self.path} must end in .mp4")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame (all frames must share the first frame's size)."""
        import av

        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ConfigError(f"video frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._container is None:
            self._container = av.open(str(self.path), "w")
            self._stream = self._container.add_stream("libx264", rate=round(self.fps))
            self._stream.height, self._stream.width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
            self._stream.pix_fmt = "yuv420p"
        assert self._stream is not None
        h, w = self._stream.height, self._stream.width
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush and close."""
        if self._container is not None and self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
