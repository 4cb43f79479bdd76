"""RosConfig: the ROS graph's shape (which nodes, for which robots) and its nodes' settings.

configs/ros/default.yaml fills it, taking the safety box and rates from the robot and sim groups;
the operator's device is the separate `teleop` group (configs/teleop/), picked per workstation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from robot_rl.data.bags import RecorderConfig
from robot_rl.rewards.server import RewardServerConfig
from robot_rl.robot.aggregator import AggregatorCameraConfig, AggregatorConfig
from robot_rl.robot.safety import SafetyConfig
from robot_rl.sim.config import ConfigError, SimConfig, check_choice

TWIN_MODES = ("lockstep", "realtime")
ACTOR_POLICIES = ("agent", "hold")


@dataclass
class RealtimeConfig:
    """The twin node's rates in real-time mode (ignored in lockstep), Hz of sim time = wall time."""

    wrench_hz: float = 1000.0  # at most the physics rate, 1 / sim.physics_dt (ros_nodes/twin_node.py)
    camera_hz: float = 30.0
    state_hz: float = 100.0  # joint_states, tcp/pose, tcp/twist, sim/privileged
    max_lag_s: float = 0.05  # physics further behind the wall clock than this is skipped, not caught up

    def validate(self, key: str = "ros.realtime") -> None:
        for name in ("wrench_hz", "camera_hz", "state_hz", "max_lag_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{key}.{name}: must be > 0, got {value}")


@dataclass
class RosRewardServerConfig(RewardServerConfig):
    """The reward server node (ros_nodes/reward_server_node.py), started with a learned reward:
    the batching of RewardServerConfig, plus where the model runs and how long an actor waits."""

    # false: it runs elsewhere, on the machine with the GPU (robot-rl-reward-server there)
    in_graph: bool = True
    device: str = "cpu"
    # An actor without an answer this long asks again (the robot holds meanwhile: the safety
    # node's stale-command watchdog); a server that is down is retried, never skipped.
    timeout_s: float = 1.0

    def validate(self, key: str = "ros.reward_server") -> None:
        super().validate(key)
        if not self.timeout_s > 0:
            raise ConfigError(f"{key}.timeout_s: must be > 0 seconds, got {self.timeout_s!r}")
        if not self.device:
            raise ConfigError(f"{key}.device: must name a torch device (cpu, cuda, cuda:1)")


@dataclass
class RosConfig:
    # One namespace per robot (or twin); "" is the root namespace, for a single robot.
    namespaces: list[str] = field(default_factory=lambda: [""])
    twin: bool = True  # the MuJoCo twin node stands in for the robot's drivers and controller
    # lockstep: the twin steps once per command, on sim time (training in CI, faster than real
    # time); realtime: the twin runs on the wall clock, as a robot does (timing tests).
    twin_mode: str = "lockstep"
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    reset_service: str = "sim_twin/reset"  # std_srvs/Trigger the actor calls between episodes
    teleop: bool = False  # start a teleop node (device from the teleop group)
    # What the actor does while the operator does not intervene: "agent", the policy; "hold", no
    # motion (an operator recording demos or labels on the graph: hil.operator.graph=true)
    actor_policy: str = "agent"
    # Lockstep on the wall clock: the actor acts at most at sim.control_hz of wall time, so the twin
    # in lockstep runs in real time and an operator can drive it (robot-rl demos on the graph); the
    # twin's real-time mode would spend a core on 1 kHz physics to the same end.
    wall_clock_pace: bool = False
    # The operator's success key marks the episode a success and ends it (the actor); false while
    # labelling frames (`robot-rl label` on the graph), where holding the key labels frames instead
    success_marks_end_episodes: bool = True
    record: bool = False  # start a recorder node: every episode as an MCAP bag
    # train.transport=ros: the learner's process runs the graph too; false when the graph runs
    # elsewhere (`robot-rl graph` on the robot's workstation) and only DDS connects them.
    start_graph: bool = True
    # Topic renames applied to every node, as ROS writes them ("tcp/pose:=/franka/ee_pose"): how a
    # real robot's drivers meet the graph's topic names.
    remappings: list[str] = field(default_factory=list)
    # What the aggregator cannot learn from the sim config: staleness limits, the F/T driver's
    # rate, frames, and per camera a crop or the compressed topic. See aggregator_for.
    aggregator: AggregatorConfig = field(default_factory=lambda: AggregatorConfig(cameras={}))
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    reward_server: RosRewardServerConfig = field(default_factory=RosRewardServerConfig)

    def validate(self, key: str = "ros") -> None:
        check_choice(self.twin_mode, TWIN_MODES, f"{key}.twin_mode")
        check_choice(self.actor_policy, ACTOR_POLICIES, f"{key}.actor_policy")
        self.realtime.validate(f"{key}.realtime")
        if not self.namespaces:
            raise ConfigError(f"{key}.namespaces: needs at least one ('' for the root namespace)")
        for namespace in self.namespaces:
            if namespace and not namespace.startswith("/"):
                raise ConfigError(f"{key}.namespaces: {namespace!r} must be absolute (start with '/') or ''")
        if len(set(self.namespaces)) != len(self.namespaces):
            raise ConfigError(f"{key}.namespaces: lists a namespace twice")
        for rule in self.remappings:
            old, _, new = rule.partition(":=")
            if not old or not new:
                raise ConfigError(f"{key}.remappings: {rule!r} is not 'topic:=new_name'")
        if not self.reset_service:
            raise ConfigError(f"{key}.reset_service: must name a std_srvs/Trigger service")
        self.aggregator.validate(f"{key}.aggregator")
        self.safety.validate(f"{key}.safety")
        self.recorder.validate(f"{key}.recorder")
        self.reward_server.validate(f"{key}.reward_server")

    def aggregator_for(self, sim: SimConfig) -> AggregatorConfig:
        """The aggregator's config in this graph. The observation spec is the sim config's, on the
        twin and on a robot alike (the agent is built from it): its cameras, their frame sizes
        (sim.camera_rigs) and the control rate. On the twin, the twin also decides how to tick:
        in lockstep on complete stamps (one wrench sample per period), in real time on a timer;
        and its ground truth (sim/privileged) comes along."""
        configured = self.aggregator.cameras
        unknown = sorted(set(configured) - set(sim.cameras))
        if unknown:
            raise ConfigError(f"ros.aggregator.cameras: {unknown} are not among sim.cameras={sim.cameras}")
        cameras = {
            cam: AggregatorCameraConfig(
                width=sim.camera_rigs[cam].width,
                height=sim.camera_rigs[cam].height,
                crop=list(configured[cam].crop) if cam in configured else [],
                compressed=configured[cam].compressed if cam in configured else False,
            )
            for cam in sim.cameras
        }
        config = replace(self.aggregator, cameras=cameras, control_hz=sim.control_hz)
        if self.twin:
            config.privileged = True
            if self.twin_mode == "lockstep":
                config.tick, config.wrench_hz, config.wrench_periods = "stamped", 1.0 / sim.physics_dt, True
            else:  # every k-th physics step's sample (ros_nodes/twin_node.py)
                physics_hz = 1.0 / sim.physics_dt
                config.wrench_hz = physics_hz / max(1, round(physics_hz / self.realtime.wrench_hz))
        config.validate("ros.aggregator")
        return config
