"""Record an env loop into an EpisodeStore: the control thread only copies a step; a writer process stores."""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import numpy as np

from data._writer_proc import (
    MAX_SLOTS,
    RING_PREFIX,
    SlotLayout,
    describe,
    map_ring,
    ring_dir,
    stack_episode,
    sweep_stale_rings,
)
from data.store import EpisodeStore
from robot.core.errors import StoreError

logger = logging.getLogger(__name__)

Backend = Literal["process", "thread"]
"""Where compression and disk writes run: a writer process fed through shared memory, or a thread."""

SWITCH_INTERVAL_S = 5e-4
"""GIL switch interval set while a thread backend records (seconds)."""
SHM_BYTES = 64 << 20
"""Default cap on the process backend's shared-memory ring (bytes). The ring is only the hand-off to the
writer's drain loop, which keeps draining while an episode commits: a few slots are in use at a time. A
small ring also stays mapped and cached; each first touch of a page costs the control thread a page fault."""
WRITER_CMD = "import sys; from data._writer_proc import main; sys.exit(main(sys.argv))"
"""The writer process runs this in a fresh interpreter (no fork; the caller's __main__ is not re-imported)."""
WRITER_START_TIMEOUT_S = 120.0
"""How long the constructor waits for the writer process to open the store."""


@dataclass(frozen=True)
class RecorderStats:
    """Counters of a Recorder since it was made."""

    steps_recorded: int
    """Steps accepted into the queue (the shared-memory ring for the process backend)."""
    steps_dropped: int
    """Steps refused because the queue was full (the writer fell behind)."""
    steps_written: int
    """Steps committed to the store."""
    episodes_written: int
    """Episodes committed to the store."""
    episodes_discarded: int
    """Episodes thrown away (discard_episode, empty episodes, or open at close)."""
    add_step_max_ms: float
    """Slowest add_step call (ms)."""
    add_step_mean_ms: float
    """Mean add_step time (ms)."""
    queue_high_water: int
    """Most steps ever waiting in the queue."""
    queue_size: int
    """Queue capacity (process backend: ring slots, queue_size capped by shm_bytes; known after the first step)."""
    image_keys: tuple[str, ...]
    """Observation keys detected as camera frames (uint8 H x W x C)."""


class Recorder:
    """Records (obs, action, reward, info) steps into episodes of an EpisodeStore opened with mode 'a'.

    Per step it stores every observation key as given (state/*, image/*, time/* stamps, ...), `action`,
    `reward`, `time/recorder` (wall clock at add_step) and `info/<k>` for each of `info_keys`.
    `add_step` runs on the control thread and never blocks: it copies the step into a free slot and returns;
    with no free slot the step is dropped and counted (stats, the episode's meta `dropped_steps`, a warning).
    Stacking, compression and disk writes happen elsewhere:

    * backend "process" (default): a writer process (a fresh interpreter, never a fork of this one; see
      data/_writer_proc.py) opens the store by path and takes its writer lock; steps travel through a
      shared-memory ring of `queue_size` slots (at most `shm_bytes` and MAX_SLOTS), laid out from the first
      step. The store class must be importable (the writer opens `type(store)`). While recording, `store` is a
      read-only view (refreshed when `end_episode(wait=True)` returns); `close()` takes the writer lock back
      and re-reads the store. If the writer dies, the next call raises StoreError; if this process dies, the
      writer commits the episodes already ended, drops the open one and removes the ring.
    * backend "thread": a writer thread in this process, fed through a bounded queue (GIL contention: the
      control thread may wait for the writer's Python work).

    The store must not be used for writing by anyone else while the recorder is open; call close() to flush.
    """

    def __init__(
        self,
        store: EpisodeStore,
        *,
        queue_size: int = 1024,
        info_keys: Sequence[str] = (),
        backend: Backend = "process",
        shm_bytes: int = SHM_BYTES,
    ) -> None:
        if not store.holds_writer_lock:
            raise StoreError(f"the recorder writes: open {store.path} with mode='a'")
        if queue_size < 1:
            raise StoreError(f"queue_size must be >= 1, got {queue_size}")
        if backend not in ("process", "thread"):
            raise StoreError(f"backend must be 'process' or 'thread', got {backend!r}")
        self.store = store
        self.info_keys = tuple(info_keys)
        self.backend: Backend = backend
        self._writer: _ThreadWriter | _ProcessWriter = (
            _ProcessWriter(store, queue_size, shm_bytes) if backend == "process" else _ThreadWriter(store, queue_size)
        )
        self._episode = -1
        self._open = False
        self._offered = 0
        self._ep_dropped = 0
        self._recorded = 0
        self._dropped = 0
        self._step_ms_max = 0.0
        self._step_ms_sum = 0.0
        self._image_keys: tuple[str, ...] | None = None
        self._closed = False

    # ------------------------------------------------------------ control thread

    def start_episode(self) -> None:
        """Begin a new episode (the previous one must have been ended or discarded)."""
        self._writer.check()
        if self._closed:
            raise StoreError("the recorder is closed")
        if self._open:
            raise StoreError("an episode is already open: call end_episode or discard_episode first")
        self._episode += 1
        self._open = True
        self._offered = 0
        self._ep_dropped = 0

    def add_step(
        self, obs: dict[str, np.ndarray], action: np.ndarray, reward: float, info: dict[str, Any] | None = None
    ) -> bool:
        """Copy one step for the writer; returns False (and counts a drop) if no room is left. Never blocks."""
        t0 = time.perf_counter()
        if not self._open:
            raise StoreError("add_step outside an episode: call start_episode first")
        step: dict[str, Any] = dict(obs)
        step["action"] = action
        step["reward"] = np.float32(reward)
        step["time/recorder"] = np.float64(time.time())
        for k in self.info_keys:
            if info is None or k not in info:
                raise StoreError(f"info has no key {k!r} (Recorder info_keys={self.info_keys}); pass it every step")
            step[f"info/{k}"] = info[k]
        if self._image_keys is None:
            self._image_keys = tuple(sorted(k for k, v in step.items() if _is_image(v)))
        self._offered += 1
        accepted = self._writer.put(self._episode, step)
        if accepted:
            self._recorded += 1
        else:
            self._dropped += 1
            self._ep_dropped += 1
        ms = 1e3 * (time.perf_counter() - t0)
        self._step_ms_max = max(self._step_ms_max, ms)
        self._step_ms_sum += ms
        return accepted

    def end_episode(
        self,
        success: bool,
        task: str = "",
        source: str = "",
        operator: str = "",
        meta: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> int | None:
        """Close the episode and have the writer commit it.

        With wait=True, blocks until it is on disk and returns its index (None if it had no steps).
        With wait=False, returns None at once; a write error is raised by the next recorder call.
        """
        self._writer.check()
        if not self._open:
            raise StoreError("end_episode without an open episode: call start_episode first")
        self._open = False
        if self._ep_dropped:
            logger.warning(
                "episode %d: %d of %d steps dropped (recorder queue of %d full: the writer fell behind)",
                self._episode, self._ep_dropped, self._offered, self._writer.capacity,
            )
        full_meta = {**(meta or {}), "dropped_steps": self._ep_dropped, "offered_steps": self._offered}
        kwargs = {"success": success, "task": task, "source": source, "operator": operator, "meta": full_meta}
        return self._writer.end(self._episode, kwargs, wait)

    def discard_episode(self) -> None:
        """Throw away the open episode."""
        if not self._open:
            raise StoreError("discard_episode without an open episode")
        self._open = False
        self._writer.discard(self._episode)

    def close(self) -> None:
        """Discard an open episode, write what is queued and stop the writer; the store is writable again."""
        if self._closed:
            return
        self._closed = True
        if self._open:
            logger.warning("recorder closed with episode %d open: discarding it", self._episode)
            self._open = False
            self._writer.discard(self._episode)
        self._writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> RecorderStats:
        """Counters so far (drops included: a full queue is reported, never hidden)."""
        w = self._writer
        w.poll()
        calls = self._recorded + self._dropped
        return RecorderStats(
            steps_recorded=self._recorded,
            steps_dropped=self._dropped,
            steps_written=w.written_steps,
            episodes_written=w.written_episodes,
            episodes_discarded=w.discarded,
            add_step_max_ms=self._step_ms_max,
            add_step_mean_ms=self._step_ms_sum / calls if calls else 0.0,
            queue_high_water=w.high_water,
            queue_size=w.capacity,
            image_keys=self._image_keys or (),
        )


def _is_image(value: Any) -> bool:
    a = np.asarray(value)
    return a.dtype == np.uint8 and a.ndim == 3


# ---------------------------------------------------------------- thread backend


@dataclass
class _Step:
    episode: int
    arrays: dict[str, np.ndarray]


@dataclass
class _End:
    episode: int
    kwargs: dict[str, Any]
    done: threading.Event
    wait: bool
    result: int | None = None
    error: BaseException | None = None


@dataclass
class _Discard:
    episode: int


_STOP = object()


class _ThreadWriter:
    """Bounded queue of step copies drained by a writer thread that appends to the store."""

    def __init__(self, store: EpisodeStore, queue_size: int) -> None:
        self.store = store
        self.capacity = queue_size
        self._q: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None  # from an end(wait=False), raised at the next call
        self._lock = threading.Lock()  # guards the writer-side counters below
        self.written_steps = 0
        self.written_episodes = 0
        self.discarded = 0
        self.high_water = 0
        # CPython hands the GIL over every switch interval (5 ms by default): while the writer thread runs
        # Python code the control thread could wait that long. 0.5 ms bounds that wait.
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="realrl-recorder", daemon=True)
        self._thread.start()

    def put(self, episode: int, step: dict[str, Any]) -> bool:
        arrays = {k: np.array(v, copy=True) for k, v in step.items()}
        try:
            self._q.put_nowait(_Step(episode, arrays))
        except queue.Full:
            return False
        self.high_water = max(self.high_water, self._q.qsize())
        return True

    def end(self, episode: int, kwargs: dict[str, Any], wait: bool) -> int | None:
        msg = _End(episode, kwargs, threading.Event(), wait)
        self._q.put(msg)  # an episode boundary may wait for the writer; a step never does
        if not wait:
            return None
        msg.done.wait()
        if msg.error is not None:
            raise msg.error
        return msg.result

    def discard(self, episode: int) -> None:
        self._q.put(_Discard(episode))

    def check(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    def poll(self) -> None:
        pass

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join()
        self.check()

    def _run(self) -> None:
        episode = -1
        steps: list[dict[str, np.ndarray]] = []
        while True:
            msg = self._q.get()
            if msg is _STOP:
                return
            if isinstance(msg, _Step):
                if msg.episode != episode:
                    episode, steps = msg.episode, []
                steps.append(msg.arrays)
            elif isinstance(msg, _Discard):
                with self._lock:
                    self.discarded += 1
                if msg.episode == episode:
                    steps = []
            elif isinstance(msg, _End):
                mine = steps if msg.episode == episode else []
                steps = []
                try:
                    msg.result = self._commit(msg.episode, mine, msg.kwargs)
                except Exception as e:
                    msg.error = e
                    if not msg.wait:
                        self._error = e  # a fire-and-forget caller sees it at its next call
                msg.done.set()

    def _commit(self, episode: int, steps: list[dict[str, np.ndarray]], kwargs: dict[str, Any]) -> int | None:
        if not steps:
            logger.warning("episode %d has no recorded steps: nothing written", episode)
            with self._lock:
                self.discarded += 1
            return None
        index = self.store.append_episode(stack_episode(episode, steps), **kwargs)
        with self._lock:
            self.written_steps += len(steps)
            self.written_episodes += 1
        return index


# ---------------------------------------------------------------- process backend


class _ProcessWriter:
    """Parent side of the writer process (data/_writer_proc.py): fills ring slots, sends episode boundaries."""

    def __init__(self, store: EpisodeStore, queue_size: int, shm_bytes: int) -> None:
        cls = type(store)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            raise StoreError(
                f"the writer process opens the store as {cls.__qualname__}, which it cannot import from "
                "__main__ or a function body: define the class in a module, or use backend='thread'"
            )
        self.store = store
        self._queue_size = min(queue_size, MAX_SLOTS)
        self._shm_bytes = shm_bytes
        self.capacity = self._queue_size
        self.written_steps = 0
        self.written_episodes = 0
        self.discarded = 0
        self.high_water = 0
        self._error: StoreError | None = None  # raised at the next call
        self._dead: StoreError | None = None  # the writer process is gone; every later call raises this
        self._dead_reported = False  # close() raises the death only if no call did before
        self._closed = False
        self._ring: mmap.mmap | None = None
        self._ring_path: Path | None = None
        self._layout: SlotLayout | None = None
        self._views: list[tuple[np.ndarray, dict[str, np.ndarray]] | None] = []
        self._drained: np.ndarray | None = None
        self._head = 0  # steps published
        self._credits = 0  # slots known to be free
        self._bad: tuple[int, str] | None = None  # (episode, why) for a step that did not fit the ring
        self._results: dict[int, tuple[str, Any]] = {}  # replies for an end(wait=True) in progress

        sweep_stale_rings()
        control_r, control_w = os.pipe()
        notify_r, notify_w = os.pipe()
        free_r, free_w = os.pipe()
        replies_r, replies_w = os.pipe()
        os.set_blocking(notify_w, False)
        os.set_blocking(free_r, False)
        self._conn = Connection(control_w, readable=False)
        self._replies = Connection(replies_r, writable=False)
        self._notify_fd, self._free_fd = notify_w, free_r
        child = {"control": control_r, "notify": notify_r, "free": free_w, "replies": replies_w}
        args = {"store": str(store.path), "store_class": f"{cls.__module__}:{cls.__qualname__}", "fds": child}
        # The writer imports what this process can: the same sys.path (a test's or a script's directory too).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        store.release_writer()  # hand the writer lock to the writer process
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", WRITER_CMD, json.dumps(args)],
                pass_fds=tuple(child.values()),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except Exception as e:
            _cleanup([self._conn, self._replies], [notify_w, free_r], None)
            store.reacquire_writer()
            raise StoreError(f"could not start the recorder's writer process ({describe(e)})") from e
        finally:
            for fd in child.values():
                os.close(fd)
        # Cleans up if the recorder is dropped without close(): the writer sees EOF and abandons its episode.
        self._finalizer = weakref.finalize(self, _cleanup, [self._conn, self._replies], [notify_w, free_r], None)
        msg = self._recv() if self._replies.poll(WRITER_START_TIMEOUT_S) else None
        if msg is None or msg[0] != "ready":
            self._proc.kill()
            self._proc.wait()
            self._finalizer()
            store.reacquire_writer()
            why = msg[1] if msg is not None and msg[0] == "fatal" else f"exit code {self._proc.returncode}"
            raise StoreError(f"the recorder's writer process could not open {store.path}: {why}")

    # ------------------------------------------------------------ per step

    def put(self, episode: int, step: dict[str, Any]) -> bool:
        if self._dead is not None or self._proc.poll() is not None:
            self._died()
        if self._bad is not None and self._bad[0] == episode:
            return True  # the episode already failed; end_episode reports it
        if self._layout is None:
            self._make_ring(step)
        assert self._layout is not None and self._ring is not None and self._drained is not None
        slot = self._head % self.capacity
        views = self._views[slot]
        if views is None:
            views = self._views[slot] = self._layout.views(self._ring, slot)
        episode_view, arrays = views
        if self._credits == 0:
            with contextlib.suppress(BlockingIOError):
                self._credits = len(os.read(self._free_fd, MAX_SLOTS))
            if self._credits == 0:
                return False
        if step.keys() != arrays.keys():
            self._bad = (episode, self._layout.mismatch(step, arrays) or "")
            return True
        try:
            for k, dst in arrays.items():  # the memcpy; the slot is published only once it is complete
                src = step[k]
                if (src.shape if isinstance(src, np.ndarray | np.generic) else np.shape(src)) != dst.shape:
                    self._bad = (episode, self._layout.mismatch(step, arrays) or "")
                    return True
                np.copyto(dst, src, casting="same_kind")
        except TypeError as e:
            self._bad = (episode, f"a step does not fit the first one's dtypes ({e})")
            return True
        episode_view[0] = episode
        self._credits -= 1
        self._head += 1
        os.write(self._notify_fd, b"\1")  # never blocks: at most MAX_SLOTS bytes are ever unread
        self.high_water = max(self.high_water, self._head - int(self._drained[0]))
        return True

    def _make_ring(self, step: dict[str, Any]) -> None:
        layout = SlotLayout.of(step)
        room = self._shm_bytes
        with contextlib.suppress(OSError):
            fs = os.statvfs(ring_dir())
            room = min(room, fs.f_bavail * fs.f_frsize // 2)
        n = min(self._queue_size, (room - layout.ring_bytes(0)) // layout.slot_bytes)
        if n < 1:
            raise StoreError(
                f"a recorded step takes {layout.slot_bytes / 2**20:.1f} MiB: the shared-memory ring "
                f"(shm_bytes={self._shm_bytes}, at most half the free space of {ring_dir()}) cannot hold one"
            )
        name = f"{RING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self._ring_path = ring_dir() / name
        self._ring = map_ring(self._ring_path, layout.ring_bytes(n), create=True)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(
            self, _cleanup, [self._conn, self._replies], [self._notify_fd, self._free_fd], self._ring_path
        )
        self._drained = np.ndarray((1,), np.int64, buffer=self._ring, offset=0)
        self._layout, self.capacity, self._credits = layout, n, n
        self._views = [None] * n
        self._send(("ring", name, layout.to_json(), n))

    # ------------------------------------------------------------ episode boundaries

    def end(self, episode: int, kwargs: dict[str, Any], wait: bool) -> int | None:
        self.check()
        if self._bad is not None and self._bad[0] == episode:
            self._send(("discard", episode, self._head))
            err = StoreError(f"episode {episode}: {self._bad[1]}")
            self._bad = None
            if wait:
                raise err
            self._error = err
            return None
        self._send(("end", episode, self._head, kwargs))
        if not wait:
            return None
        self._results[episode] = ("pending", None)
        try:
            while self._results[episode][0] == "pending":
                msg = self._recv() if self._replies.poll(0.05) else None
                if msg is not None:
                    self._handle(msg)
                elif self._proc.poll() is not None:
                    self._died()
            kind, value = self._results[episode]
        finally:
            self._results.pop(episode, None)
        if kind == "error":
            raise StoreError(value)
        self.store.follow()
        return value if kind == "committed" else None

    def discard(self, episode: int) -> None:
        if self._dead is not None:
            return  # nothing left to discard; the death is raised by the next call or close()
        self.check()
        if self._bad is not None and self._bad[0] == episode:
            self._bad = None
        self._send(("discard", episode, self._head))

    # ------------------------------------------------------------ replies, errors, shutdown

    def check(self) -> None:
        """Raise what the writer reported since the last call, or its death."""
        if self._dead is not None:
            self._dead_reported = True
            raise self._dead
        if self._closed:
            return
        self.poll()
        if self._proc.poll() is not None:
            self._died()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def poll(self) -> None:
        """Read the replies waiting in the pipe (counters, errors of episodes ended without waiting)."""
        if self._closed:
            return
        with contextlib.suppress(OSError, EOFError):
            while self._replies.poll(0) and (msg := self._recv()) is not None:  # None: EOF, the writer is gone
                self._handle(msg)

    def _recv(self) -> tuple[Any, ...] | None:
        try:
            msg: tuple[Any, ...] = self._replies.recv()
        except (EOFError, OSError):
            return None
        return msg

    def _handle(self, msg: tuple[Any, ...] | None) -> None:
        if msg is None:
            return
        kind, episode = msg[0], msg[1]
        if kind == "committed":
            self.written_episodes += 1
            self.written_steps += msg[3]
            result: tuple[str, Any] = ("committed", msg[2])
        elif kind == "empty":
            logger.warning("episode %d has no recorded steps: nothing written", episode)
            self.discarded += 1
            result = ("empty", None)
        elif kind == "discarded":
            self.discarded += 1
            return
        elif kind == "error":
            result = ("error", msg[2])
        else:
            return
        if episode in self._results:
            self._results[episode] = result
        elif kind == "error":
            self._error = StoreError(msg[2])  # an end(wait=False) failed: raised at the next call

    def _send(self, msg: tuple[Any, ...]) -> None:
        if self._dead is not None:
            self._dead_reported = True
            raise self._dead
        try:
            self._conn.send(msg)
        except OSError:
            self._died()

    def _died(self) -> None:
        """The writer process is gone: clean up, take the store back, raise (now and at every later call)."""
        if self._dead is None:
            code = self._proc.wait()
            self.poll()
            self._dead = StoreError(
                f"the recorder's writer process (pid {self._proc.pid}) died (exit code {code}): episodes "
                f"committed to {self.store.path} before it are intact, the others are lost; make a new "
                "Recorder to go on recording"
            )
            self._shutdown()
        self._dead_reported = True
        raise self._dead

    def close(self) -> None:
        if self._dead is not None:
            if not self._dead_reported:
                self._dead_reported = True
                raise self._dead
            return
        if self._closed:
            return
        try:
            self._send(("stop", self._head))
            while self._proc.poll() is None or self._replies.poll(0):
                if self._replies.poll(0.05):
                    msg = self._recv()
                    if msg is None:
                        break
                    self._handle(msg)
            if self._proc.wait() != 0:
                self._died()
        finally:
            self._shutdown()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._views.clear()
        self._drained = None
        self._finalizer()  # closes the pipes (a live writer sees EOF) and unlinks the ring
        if self._ring is not None:
            with contextlib.suppress(BufferError):
                self._ring.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self.store.reacquire_writer()


def _cleanup(conns: list[Connection], fds: list[int], ring: Path | None) -> None:
    """Close the pipes (a live writer sees EOF) and unlink the ring file; safe to run from a finalizer."""
    for conn in conns:
        conn.close()
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if ring is not None:
        with contextlib.suppress(FileNotFoundError):
            ring.unlink()
