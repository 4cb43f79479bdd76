"""The Hydra config tree composes, and bad keys/values fail at once, naming the key."""

import pytest
from hydra.errors import HydraException

from robot_rl.config import CONFIG_DIR, ConfigError, load_config
from robot_rl.sim.config import PegInsertConfig, PickCubeConfig, ReachConfig


def test_default_config_is_the_twin_on_cpu():
    config = load_config()
    assert isinstance(config.task, PickCubeConfig)
    assert config.sim.render_profile == "fast"
    assert config.sim.cameras == ["front", "wrist"]
    assert config.reward.name.startswith("oracle_")


@pytest.mark.parametrize(
    "task, config_type", [("reach", ReachConfig), ("pick_cube", PickCubeConfig), ("peg_insert", PegInsertConfig)]
)
def test_every_task_option_composes_to_its_schema(task, config_type):
    config = load_config([f"task={task}"])
    assert type(config.task) is config_type
    assert config.task.name == task


# Options that cannot run as shipped: they need a file only the user has (model weights).
NEEDS_USER_FILE = {"reward=clip": ("reward.random_init=true", "reward.checkpoint")}


def test_every_option_of_every_group_composes():
    for group_dir in sorted(p for p in CONFIG_DIR.iterdir() if p.is_dir()):
        for option in sorted(group_dir.glob("*.yaml")):
            choice = f"{group_dir.name}={option.stem}"
            if choice in NEEDS_USER_FILE:
                stand_in, missing_key = NEEDS_USER_FILE[choice]
                with pytest.raises(ConfigError, match=missing_key):
                    load_config([choice])
                load_config([choice, stand_in])
            else:
                load_config([choice])


def test_group_yaml_values_match_dataclass_defaults():
    """The YAML files restate the defaults for readers; they must not drift from the code."""
    for task, config_type in (("reach", ReachConfig), ("pick_cube", PickCubeConfig), ("peg_insert", PegInsertConfig)):
        assert load_config([f"task={task}"]).task == config_type()


def test_overrides_reach_nested_values():
    config = load_config(["sim=randomized", "sim.cameras=[wrist]", "robot.max_translation_step=0.02", "seed=7"])
    assert config.sim.randomize.lighting and config.sim.randomize.physics
    assert config.sim.cameras == ["wrist"]
    assert config.robot.max_translation_step == 0.02
    assert config.seed == 7


@pytest.mark.parametrize(
    "group, option",
    [("agent", "sac"), ("agent", "bc")] + [("reward", r) for r in ("classifier", "perceptual", "preference")],
)
def test_the_runs_seed_seeds_the_learned_models_too(group, option):
    # seeds 0, 1, 2 of a benchmark differ in the networks' initialisation and noise, not only the env's
    assert getattr(load_config([f"{group}={option}", "seed=3"]), group).seed == 3
    assert getattr(load_config([f"{group}={option}", "seed=3", f"{group}.seed=5"]), group).seed == 5


def test_a_task_specialises_its_agent_only_where_it_needs_to():
    # configs/task_agent/peg_insert_sac.yaml: the exploration peg_insert tolerates
    peg = load_config(["task=peg_insert"]).agent
    assert (peg.target_entropy, peg.log_std_max) == (-10.0, -3.7)
    assert load_config(["task=pick_cube"]).agent.target_entropy is None
    assert load_config(["task=peg_insert", "agent=bc"]).agent.name == "bc"  # nothing of SAC's forced onto BC
    # the command line wins
    assert load_config(["task=peg_insert", "agent.target_entropy=-4"]).agent.target_entropy == -4.0


def test_unknown_task_lists_valid_names():
    with pytest.raises(HydraException) as error:
        load_config(["task=stack_blocks"])
    message = str(error.value)
    assert "task/stack_blocks" in message
    for name in ("reach", "pick_cube", "peg_insert"):
        assert name in message
    assert "schema" not in message.split("Available options")[1].split("Config search path")[0]


def test_misspelt_key_fails_naming_it():
    with pytest.raises(HydraException, match="sim.physcs_dt"):
        load_config(["sim.physcs_dt=0.001"])
    with pytest.raises(ConfigError, match="task.colour"):
        load_config(["+task.colour=red"])


def test_wrong_type_fails_naming_the_key():
    with pytest.raises(HydraException) as error:
        load_config(["sim.physics_dt=fast"])
    assert "sim.physics_dt" in str(error.value.__cause__)


@pytest.mark.parametrize(
    "override, key",
    [
        ("sim.control_hz=7", "sim.control_hz"),
        ("sim.cameras=[front,top]", "sim.cameras"),
        ("sim.render_profile=ultra", "sim.render_profile"),
        ("robot.name=ur5", "robot.name"),
        ("robot.workspace_high=[0.1,0.3,0.45]", "robot.workspace_high"),
        ("task.clearance=0.05", "task.clearance"),
        ("sim.camera_rigs.front.fovy=200", "sim.camera_rigs.front.fovy"),
        ("episodes=0", "episodes"),
        ("reward.name=learned", "reward.name"),
    ],
)
def test_bad_values_fail_naming_the_key(override, key):
    if override.startswith("task.clearance"):
        override = "task=peg_insert"  # clearance only exists for peg_insert
        overrides = [override, "task.clearance=0.05"]
    else:
        overrides = [override]
    with pytest.raises(ConfigError, match=rf"^{key}:"):
        load_config(overrides)


def test_unknown_camera_error_lists_valid_cameras():
    with pytest.raises(ConfigError, match="valid: front, wrist"):
        load_config(["sim.cameras=[top]"])
