"""The label collector: `robot-rl label hil.operator.graph=true` on the ROS graph. Every executed step
the actor publishes brings a frame (its next observation's cameras), labelled by whether the operator
holds the success key (teleop/success_held, from the teleop node); each episode's frames go to a
labels file when the episode ends (robot_rl/data/labels.py, the files `robot-rl label` writes on the
twin). The bookkeeping is robot_rl/hil/operator.py's (LabelEpisode, LabelQuota); this node only
subscribes and decodes. It runs in the process of the `label` command, beside the graph.

Topics (relative names; one namespace per robot)
  subscribed
    steps                 std_msgs/UInt8MultiArray, a StepMessage, RELIABLE depth 100 (as the actor
                          publishes them)
    teleop/success_held   std_msgs/Bool: the latest says how the next frames are labelled
A step that does not decode, or lacks a camera to label, is logged and dropped.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, UInt8MultiArray

from robot_rl.hil.operator import LabelEpisode, LabelQuota, save_labels
from robot_rl.robot.messages import StepMessage
from ros_nodes import convert

STEPS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
HELD_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class LabelCollectorNode(Node):
    def __init__(self, cameras: list[str], folder: Path, task: str, quota: LabelQuota, namespaces: list[str]):
        super().__init__("label_collector")
        self.cameras, self.folder, self.task, self.quota = cameras, folder, task, quota
        self.episodes_saved = 0
        self.dropped = 0
        self.done = threading.Event()  # the quota is met
        self._held: dict[str, bool] = {}
        self._open: dict[str, LabelEpisode] = {}  # episode id -> its frames so far
        for namespace in namespaces:
            prefix = namespace.rstrip("/")
            self._held[prefix] = False
            self.create_subscription(
                UInt8MultiArray, f"{prefix}/steps", lambda msg, ns=prefix: self._on_step(msg, ns), STEPS_QOS
            )
            self.create_subscription(
                Bool, f"{prefix}/teleop/success_held", lambda msg, ns=prefix: self._on_held(msg, ns), HELD_QOS
            )

    def _on_held(self, msg: Bool, namespace: str) -> None:
        self._held[namespace] = bool(msg.data)

    def _on_step(self, msg: UInt8MultiArray, namespace: str) -> None:
        if self.done.is_set():
            return
        try:
            step = StepMessage.from_tree(convert.blob_to_tree(msg))
            key = f"{namespace}/{step.episode}"
            episode = self._open.setdefault(key, LabelEpisode({cam: [] for cam in self.cameras}))
            episode.add(step.next_obs, self._held[namespace])
        except ValueError as error:
            self.dropped += 1
            self.get_logger().error(f"steps: step dropped: {error}", throttle_duration_sec=5.0)
            return
        if step.terminated or step.truncated or self.quota.met(episode):
            self._save(key)

    def _save(self, key: str) -> None:
        episode = self._open.pop(key)
        save_labels(self.folder, self.episodes_saved, episode, self.task)
        self.quota.store(episode)
        self.episodes_saved += 1
        q = self.quota
        self.get_logger().info(
            f"labels: {q.stored_positives}/{q.positives} successes, {q.stored_negatives} failures "
            f"after {self.episodes_saved} episodes"
        )
        if q.met():
            self.done.set()

    def save_open_episodes(self) -> None:
        """What the open episodes hold so far (at Ctrl-C, or when the session ends)."""
        for key in list(self._open):
            self._save(key)
