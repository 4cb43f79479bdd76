"""The learner's ROS face: executed steps in from one or more actors, policy weights out.

The training itself is robot_rl's Trainer (robot_rl/train/learner.py), which takes its steps from
an `Actors` source; `RosActors` is that source over ROS 2. It runs in the learner's process, on
whichever machine has the GPU: DDS carries the steps and weights between machines.

Topics, for each actor namespace in `actor_namespaces` (e.g. [/robot_a, /robot_b]; [""] for none)
  subscribed  <ns>/steps           std_msgs/UInt8MultiArray, a StepMessage (robot_rl/robot/messages.py),
                                   RELIABLE, depth 1000: the learner may be busy for a few updates
  published   <ns>/policy/weights  std_msgs/UInt8MultiArray, a WeightsMessage, RELIABLE +
                                   TRANSIENT_LOCAL depth 1, so an actor that starts (or restarts)
                                   later still gets the newest weights
              <ns>/learner/consumed  std_msgs/Header, RELIABLE + TRANSIENT_LOCAL depth 1: the stamp
                                   of that actor's step the learner took last. An actor stepping a
                                   twin in lockstep waits while it is train.max_actor_lead steps
                                   ahead of it (ros_nodes/actor_node.py)

Steps that fail to decode are logged and dropped (counted in `bad_steps`). Episode names are
prefixed with the namespace, so two robots' episodes never merge. Weights travel as one message
of safetensors bytes with a SHA-256: an actor loads the whole set or, if damaged, none of it.
"""

from __future__ import annotations

import json
import queue
from dataclasses import asdict

import torch
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, UInt8MultiArray

from robot_rl.agents.config import AgentConfig
from robot_rl.robot.messages import StepMessage, WeightsMessage
from ros_nodes import convert

STEPS_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
WEIGHTS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
POLL_S = 0.5  # how often a waiting get() checks whether it was closed
SILENCE_WARNING_S = 30.0  # a learner without steps for this long says so (it keeps waiting)


class RosActors(Node):
    """An `Actors` source for Trainer.train: spin this node on an executor, then train."""

    def __init__(self, agent_config: AgentConfig, actor_namespaces: list[str], **kwargs):
        super().__init__("learner", **kwargs)
        self.agent_config = json.dumps(asdict(agent_config))
        self.steps: queue.Queue[tuple[str, StepMessage]] = queue.Queue()
        self.bad_steps = 0
        self._closed = False
        self._weights = []
        self._consumed = {}  # namespace prefix -> its learner/consumed publisher
        for namespace in actor_namespaces:
            prefix = namespace.rstrip("/")
            self.create_subscription(
                UInt8MultiArray, f"{prefix}/steps", lambda msg, ns=prefix: self._on_step(msg, ns), STEPS_QOS
            )
            self._weights.append(self.create_publisher(UInt8MultiArray, f"{prefix}/policy/weights", WEIGHTS_QOS))
            self._consumed[prefix] = self.create_publisher(Header, f"{prefix}/learner/consumed", WEIGHTS_QOS)

    def _on_step(self, msg: UInt8MultiArray, namespace: str) -> None:
        try:
            step = StepMessage.from_tree(convert.blob_to_tree(msg))
        except ValueError as error:
            self.bad_steps += 1
            self.get_logger().error(f"{namespace or '/'}steps: step dropped: {error}")
            return
        if namespace:
            step.episode = f"{namespace.strip('/')}/{step.episode}"
        self.steps.put((namespace, step))

    # the Actors contract ----------------------------------------------------------------------
    def start(self, actor_state: dict[str, torch.Tensor]) -> None:
        self.push_weights(actor_state, 0)

    def get(self) -> StepMessage | None:
        waited = 0.0
        while not self._closed:
            try:
                namespace, step = self.steps.get(timeout=POLL_S)
            except queue.Empty:
                waited += POLL_S
                if waited % SILENCE_WARNING_S < POLL_S:
                    self.get_logger().warning(f"no step from any actor for {waited:.0f} s; waiting")
                continue
            self._consumed[namespace].publish(Header(stamp=convert.time_msg(step.stamp_ns)))
            return step
        return None

    def push_weights(self, actor_state: dict[str, torch.Tensor], version: int) -> None:
        message = convert.tree_to_blob(WeightsMessage(version, actor_state, self.agent_config).to_tree())
        for publisher in self._weights:
            publisher.publish(message)

    def close(self) -> None:
        self._closed = True
