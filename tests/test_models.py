"""Every sim model the project loads compiles and steps 1 s of random control without MuJoCo warnings."""

import mujoco
import numpy as np
import pytest

from robot.core import ActionMode
from sim.franka import FrankaConfig, FrankaRobot
from sim.tasks import TASKS


@pytest.mark.parametrize("task_name", ["FrankaLift", "FrankaPickPlace", "FrankaStack"])
@pytest.mark.parametrize("mode", [ActionMode.EE_DELTA, ActionMode.JOINT_POS])
def test_model_steps_one_second_of_random_control_without_warnings(task_name: str, mode: ActionMode) -> None:
    task = TASKS.get(task_name)()
    robot = FrankaRobot(FrankaConfig(action_mode=mode), objects=task.objects, markers=task.markers)
    with robot:
        rng = np.random.default_rng(0)
        robot.reset()
        task.reset(rng, robot)
        spec = robot.spec.action
        for _ in range(int(robot.control_hz)):  # 1 s of simulated time
            robot.command(spec.to_physical(rng.uniform(-1, 1, spec.dim)))
        assert robot.data.time == pytest.approx(1.0)
        warnings = {mujoco.mjtWarning(i).name: int(w.number) for i, w in enumerate(robot.data.warning) if w.number}
        assert not warnings, f"MuJoCo warnings: {warnings}"
        assert np.all(np.isfinite(robot.data.qpos)) and np.all(np.isfinite(robot.data.qvel))


def test_raw_menagerie_panda_compiles_from_the_installed_package() -> None:
    from sim.assets import menagerie_dir

    model = mujoco.MjModel.from_xml_path(str(menagerie_dir("franka_emika_panda") / "scene.xml"))
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=500)
    assert not any(w.number for w in data.warning)
