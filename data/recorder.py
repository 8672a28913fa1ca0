"""Record an env loop into an EpisodeStore: the control thread only enqueues copies; a writer thread stores."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from data.store import EpisodeStore
from robot.core.errors import StoreError

logger = logging.getLogger(__name__)


SWITCH_INTERVAL_S = 5e-4
"""GIL switch interval set while recording (seconds)."""


@dataclass(frozen=True)
class RecorderStats:
    """Counters of a Recorder since it was made."""

    steps_recorded: int
    """Steps accepted into the queue."""
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
    """Queue capacity."""
    image_keys: tuple[str, ...]
    """Observation keys detected as camera frames (uint8 H x W x C)."""


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


class Recorder:
    """Records (obs, action, reward, info) steps into episodes of an EpisodeStore opened with mode 'a'.

    Per step it stores every observation key as given (state/*, image/*, time/* stamps, ...), `action`,
    `reward`, `time/recorder` (wall clock at add_step) and `info/<k>` for each of `info_keys`.
    `add_step` runs on the control thread and only copies arrays into a bounded queue; when the queue is
    full the step is dropped and counted (stats, the episode's meta `dropped_steps`, a warning) instead of
    blocking. Stacking, compression and disk writes happen on the writer thread. The store must not be
    used by anyone else while the recorder is open; call close() to flush.
    """

    def __init__(self, store: EpisodeStore, *, queue_size: int = 1024, info_keys: Sequence[str] = ()) -> None:
        if store.mode != "a":
            raise StoreError(f"the recorder writes: open {store.path} with mode='a'")
        if queue_size < 1:
            raise StoreError(f"queue_size must be >= 1, got {queue_size}")
        self.store = store
        self.info_keys = tuple(info_keys)
        self._q: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._queue_size = queue_size
        self._episode = -1
        self._open = False
        self._offered = 0
        self._ep_dropped = 0
        self._recorded = 0
        self._dropped = 0
        self._high_water = 0
        self._step_ms_max = 0.0
        self._step_ms_sum = 0.0
        self._image_keys: tuple[str, ...] | None = None
        self._error: BaseException | None = None  # from an end_episode(wait=False), raised at the next call
        self._lock = threading.Lock()  # guards the writer-side counters below
        self._written_steps = 0
        self._written_episodes = 0
        self._discarded = 0
        self._closed = False
        # CPython hands the GIL over every switch interval (5 ms by default): while the writer thread runs
        # Python code the control thread could wait that long. 0.5 ms bounds that wait.
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="realrl-recorder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ control thread

    def start_episode(self) -> None:
        """Begin a new episode (the previous one must have been ended or discarded)."""
        self._raise_pending()
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
        """Queue copies of one step; returns False (and counts a drop) if the queue is full. Never blocks."""
        t0 = time.perf_counter()
        if not self._open:
            raise StoreError("add_step outside an episode: call start_episode first")
        arrays = {k: np.array(v, copy=True) for k, v in obs.items()}
        arrays["action"] = np.array(action, copy=True)
        arrays["reward"] = np.asarray(reward, dtype=np.float32)
        arrays["time/recorder"] = np.asarray(time.time(), dtype=np.float64)
        for k in self.info_keys:
            if info is None or k not in info:
                raise StoreError(f"info has no key {k!r} (Recorder info_keys={self.info_keys}); pass it every step")
            arrays[f"info/{k}"] = np.array(info[k], copy=True)
        if self._image_keys is None:
            self._image_keys = tuple(sorted(k for k, v in arrays.items() if v.dtype == np.uint8 and v.ndim == 3))
        self._offered += 1
        try:
            self._q.put_nowait(_Step(self._episode, arrays))
            self._recorded += 1
            self._high_water = max(self._high_water, self._q.qsize())
            accepted = True
        except queue.Full:
            self._dropped += 1
            self._ep_dropped += 1
            accepted = False
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
        self._raise_pending()
        if not self._open:
            raise StoreError("end_episode without an open episode: call start_episode first")
        self._open = False
        if self._ep_dropped:
            logger.warning(
                "episode %d: %d of %d steps dropped (recorder queue of %d full: the writer fell behind)",
                self._episode, self._ep_dropped, self._offered, self._queue_size,
            )
        full_meta = {**(meta or {}), "dropped_steps": self._ep_dropped, "offered_steps": self._offered}
        kwargs = {"success": success, "task": task, "source": source, "operator": operator, "meta": full_meta}
        msg = _End(self._episode, kwargs, threading.Event(), wait)
        self._q.put(msg)  # an episode boundary may wait for the writer; a step never does
        if not wait:
            return None
        msg.done.wait()
        if msg.error is not None:
            raise msg.error
        return msg.result

    def discard_episode(self) -> None:
        """Throw away the open episode."""
        if not self._open:
            raise StoreError("discard_episode without an open episode")
        self._open = False
        self._q.put(_Discard(self._episode))

    def close(self) -> None:
        """Discard an open episode, write what is queued and stop the writer thread."""
        if self._closed:
            return
        if self._open:
            logger.warning("recorder closed with episode %d open: discarding it", self._episode)
            self.discard_episode()
        self._closed = True
        self._q.put(_STOP)
        self._thread.join()
        self._raise_pending()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> RecorderStats:
        """Counters so far (drops included: a full queue is reported, never hidden)."""
        with self._lock:
            written, episodes, discarded = self._written_steps, self._written_episodes, self._discarded
        calls = self._recorded + self._dropped
        return RecorderStats(
            steps_recorded=self._recorded,
            steps_dropped=self._dropped,
            steps_written=written,
            episodes_written=episodes,
            episodes_discarded=discarded,
            add_step_max_ms=self._step_ms_max,
            add_step_mean_ms=self._step_ms_sum / calls if calls else 0.0,
            queue_high_water=self._high_water,
            queue_size=self._queue_size,
            image_keys=self._image_keys or (),
        )

    def _raise_pending(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    # ------------------------------------------------------------ writer thread

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
                    self._discarded += 1
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
                self._discarded += 1
            return None
        keys = steps[0].keys()
        for i, s in enumerate(steps):
            if s.keys() != keys:
                raise StoreError(
                    f"episode {episode}: step {i} has keys {sorted(s)} but step 0 had {sorted(keys)}; "
                    "every step of an episode must carry the same observation keys"
                )
        try:
            arrays = {k: np.stack([s[k] for s in steps]) for k in keys}
        except ValueError as e:
            raise StoreError(f"episode {episode}: a key changed shape between steps ({e})") from e
        index = self.store.append_episode(arrays, **kwargs)
        with self._lock:
            self._written_steps += len(steps)
            self._written_episodes += 1
        return index
