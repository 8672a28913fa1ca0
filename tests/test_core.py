"""Contracts: spec validation and serialization, action mapping, registries, errors."""

import numpy as np
import pytest

from robot.core import ActionMode, ActionSpec, CameraSpec, ConfigError, EmbodimentSpec, JointSpec, Registry
from sim.franka import FrankaRobot


def test_action_spec_maps_normalized_to_physical_and_back() -> None:
    a = ActionSpec(ActionMode.EE_DELTA, ("x", "g"), (-0.05, 0.0), (0.05, 1.0))
    phys = a.to_physical(np.array([-1.0, 1.0]))
    np.testing.assert_allclose(phys, [-0.05, 1.0])
    np.testing.assert_allclose(a.to_physical(np.zeros(2)), [0.0, 0.5])
    x = np.array([0.3, -0.7])
    np.testing.assert_allclose(a.to_normalized(a.to_physical(x)), x)


@pytest.mark.parametrize(
    "make",
    [
        lambda: JointSpec("j", 1.0, 1.0),
        lambda: CameraSpec("c", 0, 10),
        lambda: ActionSpec(ActionMode.JOINT_POS, ("a",), (0.0, 1.0), (1.0,)),
        lambda: ActionSpec(ActionMode.JOINT_POS, ("a",), (1.0,), (0.0,)),
    ],
)
def test_invalid_specs_raise_config_error(make) -> None:
    with pytest.raises(ConfigError):
        make()


def test_embodiment_rejects_unknown_group_members_and_duplicates() -> None:
    act = ActionSpec(ActionMode.JOINT_POS, ("a",), (0.0,), (1.0,))
    with pytest.raises(ConfigError, match="unknown joints"):
        EmbodimentSpec("r", (JointSpec("a", 0, 1),), act, groups={"arm": ("b",)})
    with pytest.raises(ConfigError, match="duplicate joint"):
        EmbodimentSpec("r", (JointSpec("a", 0, 1), JointSpec("a", 0, 1)), act)


def test_franka_spec_round_trips_through_dict() -> None:
    spec = FrankaRobot().spec
    d = spec.to_dict()
    assert EmbodimentSpec.from_dict(d) == spec
    with pytest.raises(ConfigError, match="malformed"):
        EmbodimentSpec.from_dict({"name": "x"})


def test_registry_lists_names_on_failed_lookup() -> None:
    reg: Registry[int] = Registry("widgets")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    assert reg.get("beta") == 2
    with pytest.raises(ConfigError) as e:
        reg.get("alpah")
    assert "alpha, beta" in str(e.value) and "Did you mean 'alpha'" in str(e.value)
    with pytest.raises(ConfigError, match="twice"):
        reg.register("alpha")(3)
