"""The ROS graph's node set, described once from the composed config. Two things start it:
`robot-rl graph` (ros_nodes/graph.py: every node in one process on a MultiThreadedExecutor, which
CI uses: `ros2 launch` is not installable there) and launch/sim.launch.py / launch/real.launch.py
(one process per node under `ros2 launch`, on a workstation with ROS 2).

Per robot namespace in ros.namespaces:
  twin        the MuJoCo twin in place of the drivers and controller (ros.twin)
  aggregator  sensor streams -> one observation per control tick
  safety      actor/* -> command/*, or a hold
  actor       observation -> command, executed steps -> learner and recorder
  teleop      the operator's device (ros.teleop)
  recorder    every episode as an MCAP bag (ros.record)
Once per graph, in the root namespace:
  reward_server  a learned reward's model, scoring every robot's steps (a learned `reward=`, and
                 ros.reward_server.in_graph; else it runs on the GPU machine, or there is none)
The learner is not part of it: `robot-rl train train.transport=ros` runs the learner beside the
graph (or on another machine) and talks to it over DDS.

Every node gets the same Hydra overrides (`config_overrides`) and composes the same config; in
lockstep each robot's nodes run on their twin's sim time (`use_sim_time`). Twins step apart, so
each has a clock of its own: in a namespace, /clock is remapped to <namespace>/clock (one /clock
for all would run every node on the interleaved times of all twins, and time would go back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robot_rl.config import Config


@dataclass(frozen=True)
class NodeKind:
    module: str  # ros_nodes.<module>: its main() runs the node as a process
    class_name: str  # the rclpy Node subclass in it, for one-process graphs
    executable: str  # the console script of pyproject.toml that runs main()


NODE_KINDS = {
    "twin": NodeKind("ros_nodes.twin_node", "TwinNode", "robot-rl-twin"),
    "aggregator": NodeKind("ros_nodes.aggregator_node", "AggregatorNode", "robot-rl-aggregator"),
    "safety": NodeKind("ros_nodes.safety_node", "SafetyNode", "robot-rl-safety"),
    "actor": NodeKind("ros_nodes.actor_node", "ActorNode", "robot-rl-actor"),
    "teleop": NodeKind("ros_nodes.teleop_node", "TeleopNode", "robot-rl-teleop"),
    "recorder": NodeKind("ros_nodes.recorder_node", "RecorderNode", "robot-rl-recorder"),
    "reward_server": NodeKind("ros_nodes.reward_server_node", "RewardServerNode", "robot-rl-reward-server"),
}


@dataclass(frozen=True)
class NodeSpec:
    kind: str  # a key of NODE_KINDS
    namespace: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)  # topic: new name

    @property
    def node(self) -> NodeKind:
        return NODE_KINDS[self.kind]


def graph_nodes(config: Config, overrides: list[str]) -> list[NodeSpec]:
    ros = config.ros
    lockstep = ros.twin and ros.twin_mode == "lockstep"
    common = {"config_overrides": list(overrides), "use_sim_time": lockstep}
    nodes = []
    if not config.reward.is_oracle and ros.reward_server.in_graph:  # it serves every robot: wall time
        nodes.append(NodeSpec("reward_server", "", {**common, "use_sim_time": False}))
    for index, namespace in enumerate(ros.namespaces):
        kinds = ["twin"] if ros.twin else []
        kinds += ["aggregator", "safety", "actor"]
        kinds += ["teleop"] if ros.teleop else []
        kinds += ["recorder"] if ros.record else []
        for kind in kinds:
            parameters = dict(common)
            if kind in ("twin", "actor"):
                # robots of one graph must not make the same episodes and explore alike
                parameters["seed"] = config.seed + index
            if kind in ("twin", "safety", "actor"):
                parameters["base_frame"] = ros.aggregator.base_frame  # of poses and commands
            if kind == "twin":
                parameters["mode"] = ros.twin_mode
                parameters["ft_frame"] = ros.aggregator.ft_frame
            if kind == "actor":
                parameters["reset_service"] = ros.reset_service
                parameters["policy"] = ros.actor_policy
                parameters["success_marks"] = ros.success_marks_end_episodes
                parameters["resume_safety"] = ros.twin  # a hold ends the episode; the twin's reset clears it
                parameters["pace_hz"] = config.sim.control_hz if lockstep and ros.wall_clock_pace else 0.0
                # in lockstep only the learner's pace can hold the twin back (actor_node.py)
                parameters["max_lead_steps"] = config.train.max_actor_lead if lockstep else 0
            if kind == "safety":
                parameters["lockstep"] = lockstep
            remappings = dict(rule.split(":=", 1) for rule in ros.remappings)
            if lockstep and namespace:
                remappings["/clock"] = f"{namespace}/clock"
            nodes.append(NodeSpec(kind, namespace, parameters, remappings))
    return nodes
