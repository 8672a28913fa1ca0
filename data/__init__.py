"""Episode storage: a crash-safe zarr store, an off-thread recorder, and inspection/repair tools."""

from data.recorder import Recorder, RecorderStats
from data.store import SCHEMA_VERSION, SOURCES, EpisodeStore, KeySpec
from data.tools import format_info, info, repair, validate

__all__ = [
    "SCHEMA_VERSION",
    "SOURCES",
    "EpisodeStore",
    "KeySpec",
    "Recorder",
    "RecorderStats",
    "format_info",
    "info",
    "repair",
    "validate",
]
