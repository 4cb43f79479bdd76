"""The Hydra config tree's schema: one dataclass per group, registered in Hydra's ConfigStore.

configs/config.yaml picks one option per group (task, robot, sim, agent, reward); each option's
YAML file names its schema from this module, so a misspelt key or a value of the wrong type
fails while composing, naming the key, and `load_config` then runs the value checks that a
type cannot express (ranges, names), again naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from robot_rl.agents.bc.config import BCConfig
from robot_rl.agents.config import AgentConfig, ScriptedExpertConfig
from robot_rl.agents.sac.config import SACConfig
from robot_rl.hil.config import HilConfig
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.clip.config import CLIPRewardConfig
from robot_rl.rewards.config import OracleRewardConfig, RewardConfig
from robot_rl.rewards.ensemble import CompositeRewardConfig, RewardEnsembleConfig
from robot_rl.rewards.perceptual.config import PerceptualRewardConfig
from robot_rl.rewards.preference.config import PreferenceRewardConfig
from robot_rl.rewards.simple import ForcePenaltyConfig, InterventionRewardConfig
from robot_rl.robot.config import RosConfig
from robot_rl.robot.teleop import TeleopConfig
from robot_rl.sim.config import (
    TWIN_ROBOT,
    ConfigError,
    PegInsertConfig,
    PickCubeConfig,
    ReachConfig,
    RobotConfig,
    SimConfig,
    TaskConfig,
)
from robot_rl.train.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class Config:
    task: TaskConfig = MISSING
    robot: RobotConfig = MISSING
    sim: SimConfig = MISSING
    agent: AgentConfig = MISSING
    reward: RewardConfig = MISSING
    train: TrainConfig = MISSING
    ros: RosConfig = MISSING
    teleop: TeleopConfig = MISSING
    hil: HilConfig = MISSING
    seed: int = 0
    episodes: int = 3
    output_dir: str = "outputs"
    video_episodes: int = 1  # how many of the episodes go into the video
    run_dir: str = ""  # train: "" makes a new run dir under output_dir; an existing one resumes
    checkpoint: str = ""  # eval: the run dir of a training run

    def validate(self) -> None:
        for key in ("task", "robot", "sim", "agent", "reward", "train", "ros", "teleop", "hil"):
            getattr(self, key).validate(key)
        self.hil.check_reward(self.reward.name, list(getattr(self.reward, "sources", {})))
        if self.hil.mode != "off" and not (self.train.mode == "sync" and self.train.transport == "inprocess"):
            raise ConfigError(
                f"hil.mode={self.hil.mode}: the simulated human acts on the in-process twin (train.mode=sync, "
                "train.transport=inprocess); over ROS the operator intervenes through the teleop node"
            )
        if self.hil.mode != "off" and self.agent.name == "bc":
            raise ConfigError("hil.mode: BC learns from the demos alone; interventions need agent=sac")
        if self.ros.twin and self.robot.name != TWIN_ROBOT:
            raise ConfigError(
                f"robot.name: the twin simulates a Franka Panda, not a {self.robot.name!r}: "
                f"run robot={self.robot.name} with ros.twin=false (its drivers instead of the twin)"
            )
        if self.ros.twin and self.robot.command_interface != "pose":
            raise ConfigError(
                f"robot.command_interface: the twin takes a target pose, not {self.robot.command_interface!r} "
                "(ros.twin=true)"
            )
        if self.episodes < 1:
            raise ConfigError(f"episodes: must be >= 1, got {self.episodes}")
        if not 0 <= self.video_episodes <= self.episodes:
            raise ConfigError(f"video_episodes: must be in [0, episodes={self.episodes}], got {self.video_episodes}")


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    # Schemas live under schema/<group>/ so that they are not listed among a group's options.
    cs.store(group="schema/task", name="reach", node=ReachConfig)
    cs.store(group="schema/task", name="pick_cube", node=PickCubeConfig)
    cs.store(group="schema/task", name="peg_insert", node=PegInsertConfig)
    cs.store(group="schema/robot", name="panda", node=RobotConfig)
    cs.store(group="schema/sim", name="sim", node=SimConfig)
    cs.store(group="schema/agent", name="sac", node=SACConfig)
    cs.store(group="schema/agent", name="bc", node=BCConfig)
    cs.store(group="schema/agent", name="scripted_expert", node=ScriptedExpertConfig)
    cs.store(group="schema/train", name="train", node=TrainConfig)
    cs.store(group="schema/ros", name="ros", node=RosConfig)
    cs.store(group="schema/teleop", name="teleop", node=TeleopConfig)
    cs.store(group="schema/hil", name="hil", node=HilConfig)
    cs.store(group="schema/reward", name="oracle", node=OracleRewardConfig)
    cs.store(group="schema/reward", name="classifier", node=SuccessClassifierConfig)
    cs.store(group="schema/reward", name="clip", node=CLIPRewardConfig)
    cs.store(group="schema/reward", name="intervention", node=InterventionRewardConfig)
    cs.store(group="schema/reward", name="perceptual", node=PerceptualRewardConfig)
    cs.store(group="schema/reward", name="preference", node=PreferenceRewardConfig)
    cs.store(group="schema/reward", name="force_penalty", node=ForcePenaltyConfig)
    cs.store(group="schema/reward", name="composite", node=CompositeRewardConfig)
    cs.store(group="schema/reward", name="ensemble", node=RewardEnsembleConfig)


def load_config(overrides: list[str] | None = None, config_name: str = "config") -> Config:
    """Compose configs/<config_name>.yaml with command-line style overrides, convert it to the
    dataclasses above and validate it. Raises on the first bad key or value."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    config: Config = OmegaConf.to_object(cfg)
    # Hydra's `+key=value` adds keys even to structured configs; a key that no dataclass has
    # would then be silently ignored, so refuse it here.
    unknown = _unknown_keys(cfg, OmegaConf.structured(config))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (not a field of its config)")
    config.validate()
    return config


def _unknown_keys(composed: DictConfig, schema: DictConfig, prefix: str = "") -> list[str]:
    unknown = []
    for key in composed:
        if key not in schema:
            unknown.append(f"{prefix}{key}")
        elif isinstance(composed[key], DictConfig) and isinstance(schema[key], DictConfig):
            unknown += _unknown_keys(composed[key], schema[key], f"{prefix}{key}.")
    return unknown


def agent_config_of_run(run_dir: Path) -> AgentConfig:
    """The agent config a training run was started with (its config.yaml), so that evaluating it
    builds the same networks whatever the evaluation's own agent options are."""
    saved = OmegaConf.load(run_dir / "config.yaml").agent
    schemas = {"sac": SACConfig, "bc": BCConfig}
    if saved.get("name") not in schemas:
        raise ConfigError(f"agent.name: the run in {run_dir} trained {saved.get('name')!r}, not a learning agent")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schemas[saved.name]), saved))


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
