"""MuJoCo robots, tasks and scripted experts; importing `sim` registers the `realrl/*` gymnasium ids."""

import os

# Offscreen rendering without a display: EGL (Mesa works on CPU). Must be set before mujoco is imported.
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from sim.registration import register_all

register_all()
