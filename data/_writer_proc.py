"""The recorder's writer process: steps arrive through a shared-memory ring, episodes leave as store appends.

The control process starts it with `python -c` (recorder.WRITER_CMD): a fresh interpreter (no fork of a
process holding torch, MuJoCo or EGL state, and, unlike multiprocessing's spawn, no re-import of the
caller's __main__). The two share:

  * a ring of `n_slots` fixed-size slots in one file in /dev/shm, mapped by both; a slot holds one step: an
    int64 episode number, then every array at a 64-byte aligned offset (`SlotLayout`, fixed by the first
    step). The first 64 bytes of the file hold the count of steps the writer has copied out;
  * a `notify` pipe: one byte per published step, written by the parent after its memcpy (non-blocking);
  * a `free` pipe: one byte per slot the writer has copied out, read by the parent (non-blocking) when it runs
    out of slots it knows to be free. With none, the parent drops the step; it never waits.
    The pipes' syscalls also order the memory accesses to the ring on every CPU;
  * a control pipe parent -> writer (the ring, episode boundaries, stop) and a reply pipe back, carrying
    pickled tuples (multiprocessing.connection.Connection).

Steps are consumed in order: the n-th published step lies in slot n % n_slots. An episode boundary carries
the number of steps published before it; the writer drains the ring up to there before acting on it. When the
control pipe reaches EOF (the parent died) the writer abandons the open episode, lets an episode already
being committed finish, unlinks the ring and exits.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import queue
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from robot.core.errors import StoreError

SLOT_ALIGN = 64
"""Byte alignment of every array inside a slot (a cache line)."""
HEADER_BYTES = 64
"""Ring header: int64 count of steps the writer has copied out (the parent's high-water mark reads it)."""
WRITER_NICE = 10
"""Niceness added to the writer process: on a loaded machine the control process gets the CPU first."""
PARENT_CHECK_S = 0.5
"""How often an idle writer checks that its parent is still there (besides EOF on the control pipe)."""
RING_PREFIX = "realrl-rec-"
"""Ring file names: realrl-rec-<parent pid>-<random>."""
MAX_SLOTS = 4096
"""Ring slots at most: one byte per outstanding slot must always fit in a pipe (one page at least on Linux,
even for a user over fs.pipe-user-pages-soft), so neither side's pipe write can block."""


def ring_dir() -> Path:
    """Where ring files live: /dev/shm (memory) where there is one, else the temp directory."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


@dataclass(frozen=True)
class SlotLayout:
    """Where each array of a step lies in a slot; fixed by the first recorded step."""

    keys: tuple[str, ...]
    """Array names, in the order of the first step."""
    shapes: tuple[tuple[int, ...], ...]
    """Per-key shape of one step."""
    dtypes: tuple[str, ...]
    """Per-key numpy dtype string."""
    offsets: tuple[int, ...]
    """Per-key byte offset inside a slot."""
    slot_bytes: int
    """Bytes per slot (a multiple of SLOT_ALIGN)."""

    @classmethod
    def of(cls, step: dict[str, Any]) -> SlotLayout:
        """Layout holding a step like this one."""
        keys, shapes, dtypes, offsets = [], [], [], []
        offset = SLOT_ALIGN  # the episode number comes first
        for key, value in step.items():
            a = np.asarray(value)
            keys.append(key)
            shapes.append(tuple(int(s) for s in a.shape))
            dtypes.append(a.dtype.str)
            offsets.append(offset)
            offset += SLOT_ALIGN * math.ceil(max(1, a.nbytes) / SLOT_ALIGN)
        return cls(tuple(keys), tuple(shapes), tuple(dtypes), tuple(offsets), offset)

    def to_json(self) -> dict[str, Any]:
        """Plain form for the control pipe."""
        return {"keys": self.keys, "shapes": self.shapes, "dtypes": self.dtypes, "offsets": self.offsets,
                "slot_bytes": self.slot_bytes}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SlotLayout:
        """Inverse of to_json."""
        return cls(tuple(d["keys"]), tuple(tuple(s) for s in d["shapes"]), tuple(d["dtypes"]),
                   tuple(d["offsets"]), int(d["slot_bytes"]))

    def ring_bytes(self, n_slots: int) -> int:
        """Size of a ring file of n_slots slots."""
        return HEADER_BYTES + n_slots * self.slot_bytes

    def views(self, buf: mmap.mmap, slot: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(episode number (1,) int64, {key: array}) views of one slot of the ring."""
        base = HEADER_BYTES + slot * self.slot_bytes
        episode = np.ndarray((1,), np.int64, buffer=buf, offset=base)
        arrays = {
            k: np.ndarray(s, np.dtype(d), buffer=buf, offset=base + o)
            for k, s, d, o in zip(self.keys, self.shapes, self.dtypes, self.offsets, strict=True)
        }
        return episode, arrays

    @staticmethod
    def mismatch(step: dict[str, Any], views: dict[str, np.ndarray]) -> str | None:
        """Why a step cannot go into a slot of this layout (None if it can)."""
        if step.keys() != views.keys():
            return (
                f"a step has keys {sorted(step)} but the first recorded step had {sorted(views)}; "
                "every step of an episode must carry the same observation keys"
            )
        for k, dst in views.items():
            if np.shape(step[k]) != dst.shape:
                return f"a key changed shape between steps: {k!r} {dst.shape} -> {np.shape(step[k])}"
        return None


def map_ring(path: Path, size: int, *, create: bool) -> mmap.mmap:
    """Map a ring file (made, of `size` bytes, when create=True); the writer also reserves its pages."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        else:
            # Reserve the pages now, so a full /dev/shm fails here, not as SIGBUS in the parent's memcpy.
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def sweep_stale_rings() -> list[Path]:
    """Unlink ring files whose parent process is gone (both processes killed); returns them."""
    gone = []
    with contextlib.suppress(OSError):
        for p in ring_dir().glob(f"{RING_PREFIX}*"):
            pid = p.name[len(RING_PREFIX):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    p.unlink()
                    gone.append(p)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stack_episode(episode: int, steps: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One episode's per-step arrays stacked along time (both recorder backends commit through this)."""
    keys = steps[0].keys()
    for i, s in enumerate(steps):
        if s.keys() != keys:
            raise StoreError(
                f"episode {episode}: step {i} has keys {sorted(s)} but step 0 had {sorted(keys)}; "
                "every step of an episode must carry the same observation keys"
            )
    try:
        return {k: np.stack([s[k] for s in steps]) for k in keys}
    except ValueError as e:
        raise StoreError(f"episode {episode}: a key changed shape between steps ({e})") from e


def describe(e: BaseException) -> str:
    """An error as text for the parent (StoreError messages as they are, anything else with its type)."""
    return str(e) if isinstance(e, StoreError) else f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- the writer process


class _Writer:
    """The writer process: the open store, the mapped ring, steps per episode, and a committer thread."""

    def __init__(self, store: Any, conn: Connection, replies: Connection, notify_fd: int, free_fd: int) -> None:
        self.store = store
        self.conn = conn
        self.replies = replies
        self.notify_fd = notify_fd
        self.free_fd = free_fd
        self.ppid = os.getppid()
        self.send_lock = threading.Lock()
        self.path: Path | None = None
        self.ring: mmap.mmap | None = None
        self.layout: SlotLayout | None = None
        self.n_slots = 0
        self.drained = 0
        self.notified = 0  # notify bytes read but not yet drained
        self.views: list[tuple[np.ndarray, dict[str, np.ndarray]] | None] = []
        self.steps: dict[int, list[dict[str, np.ndarray]]] = {}
        self.orphaned = False
        """The parent went away without saying stop: the writer unlinks the ring itself."""
        # One episode commits while the next one drains; a third boundary waits (the ring absorbs the wait).
        self.jobs: queue.Queue[tuple[int, list[dict[str, np.ndarray]], dict[str, Any]] | None] = queue.Queue(1)
        self.committer = threading.Thread(target=self._commit_loop, name="realrl-recorder-commit", daemon=True)
        self.committer.start()

    def send(self, msg: tuple[Any, ...]) -> None:
        with self.send_lock, contextlib.suppress(OSError):  # a dead parent reads nothing
            self.replies.send(msg)

    def attach(self, name: str, layout: dict[str, Any], n_slots: int) -> None:
        self.layout = SlotLayout.from_json(layout)
        self.n_slots = n_slots
        self.path = ring_dir() / name
        self.ring = map_ring(self.path, self.layout.ring_bytes(n_slots), create=False)
        self.views = [None] * n_slots

    def read_notify(self, block: bool) -> None:
        """Count newly published steps (blocking: until at least one more)."""
        os.set_blocking(self.notify_fd, block)
        try:
            got = os.read(self.notify_fd, MAX_SLOTS)
        except BlockingIOError:
            return
        if not got:
            raise EOFError("the control process closed the notify pipe")
        self.notified += len(got)

    def drain(self) -> None:
        """Copy every published step out of the ring and hand its slot back."""
        freed = 0
        while self.notified:
            self._copy_out()
            self.notified -= 1
            freed += 1
        if freed:
            os.write(self.free_fd, b"\1" * freed)

    def _copy_out(self) -> None:
        assert self.layout is not None and self.ring is not None
        slot = self.drained % self.n_slots
        views = self.views[slot]
        if views is None:
            views = self.views[slot] = self.layout.views(self.ring, slot)
        episode_view, arrays = views
        step = {k: v.copy() for k, v in arrays.items()}
        self.steps.setdefault(int(episode_view[0]), []).append(step)
        self.drained += 1
        np.ndarray((1,), np.int64, buffer=self.ring, offset=0)[0] = self.drained

    def drain_to(self, head: int) -> None:
        """Drain until `head` steps have come out (the parent published them before sending the boundary)."""
        while self.drained + self.notified < head:
            self.read_notify(block=True)
        self.drain()

    def run(self) -> None:
        """Serve the parent until it says stop or goes away (EOF, or a new parent pid: the parent died)."""
        try:
            while True:
                ready = wait([self.conn, self.notify_fd], PARENT_CHECK_S)
                if self.conn in ready:  # first: the ring itself arrives here before any step
                    while self.conn.poll(0):
                        if not self.handle(self.conn.recv()):
                            return
                if self.notify_fd in ready:
                    self.read_notify(block=False)
                    self.drain()
                if not ready and os.getppid() != self.ppid:
                    raise EOFError("the control process is gone")
        except (EOFError, OSError):
            # The control process is gone: its open episode is abandoned, ended ones still commit.
            self.orphaned = True
            self.steps.clear()
        finally:
            self.jobs.put(None)
            self.committer.join()
            self.store.close()
            self.release_ring()

    def handle(self, msg: tuple[Any, ...]) -> bool:
        kind = msg[0]
        if kind == "ring":
            self.attach(*msg[1:])
        elif kind == "end":
            _, episode, head, kwargs = msg
            self.drain_to(head)
            self.jobs.put((episode, self.steps.pop(episode, []), kwargs))
        elif kind == "discard":
            _, episode, head = msg
            self.drain_to(head)
            self.steps.pop(episode, None)
            self.send(("discarded", episode))
        elif kind == "stop":
            self.drain_to(msg[1])
            return False
        return True

    def _commit_loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            episode, steps, kwargs = job
            if not steps:
                self.send(("empty", episode))
                continue
            try:
                index = self.store.append_episode(stack_episode(episode, steps), **kwargs)
            except Exception as e:
                self.send(("error", episode, describe(e)))
            else:
                self.send(("committed", episode, index, len(steps)))

    def release_ring(self) -> None:
        if self.ring is None:
            return
        self.views.clear()
        if self.orphaned and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        with contextlib.suppress(BufferError):
            self.ring.close()


def _import(spec: str) -> Any:
    """The object named 'module:qualname'."""
    module, _, qualname = spec.partition(":")
    obj: Any = __import__(module, fromlist=["_"])
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def main(argv: list[str]) -> int:
    """Entry point (see recorder.WRITER_CMD); argv[1] is JSON: store path, store class, pipe fds."""
    args = json.loads(argv[1])
    fds = args["fds"]
    conn = Connection(fds["control"], writable=False)
    replies = Connection(fds["replies"], readable=False)
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICE)
    try:
        store = _import(args["store_class"]).open(args["store"], "a")
    except Exception as e:
        with contextlib.suppress(OSError):
            replies.send(("fatal", describe(e)))
        return 1
    writer = _Writer(store, conn, replies, fds["notify"], fds["free"])
    writer.send(("ready", len(store)))
    writer.run()
    return 0

