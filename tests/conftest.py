"""Shared fixtures: offscreen rendering and the list of realrl sim ids."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

import sim  # noqa: F401 - registers realrl/* ids

REALRL_IDS = ["realrl/FrankaLift-v0", "realrl/FrankaPickPlace-v0", "realrl/FrankaStack-v0"]


@pytest.fixture(params=REALRL_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param
