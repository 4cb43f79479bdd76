"""The episode recorder: the actor's executed steps in, one ROS 2 bag (rosbag2, MCAP) per episode out,
in a layout that ros2 bag and Foxglove show and that robot_rl.data.bags reads back as demos and labels
(the bag's topics, timeline and crash guarantees are documented there). The bookkeeping is
robot_rl.data.bags.EpisodeRecorder's; this node subscribes, decodes and hands it the steps.

Topics (relative names: one namespace per robot)
  subscribed
    steps           std_msgs/UInt8MultiArray, a StepMessage (robot_rl/robot/messages.py) per executed
                    step, RELIABLE depth 100 as the actor publishes them: a step is lost only if 100
                    queue up while a bag is being written
    teleop/success  std_msgs/Empty, RELIABLE depth 10: the operator marks the episode being recorded a
                    success; that step on, its success labels and its end record say so (ignored,
                    with a warning, while no episode is being recorded)

Bags go into config.directory as <episode id>/ (<episode id>-2/ and on when that exists already, as
after an actor restart). A terminated or truncated step closes its bag; a step of another episode
while one is open closes the open one as cut short (truncated, not ended; a warning says so); the
node's shutdown (destroy_node) closes the open one the same way, cleanly. A message that does not
decode as a StepMessage, or a step that does not continue its episode (a gap, stamps going back,
other cameras), is logged with the reason and dropped: the bag stays as it was and recording goes on.
Both callbacks run in the node's default mutually exclusive group, so the recorder sees one at a time.
"""

from __future__ import annotations

import logging

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Empty, UInt8MultiArray

from robot_rl.data.bags import EpisodeRecorder, RecorderConfig
from robot_rl.robot.messages import StepMessage
from ros_nodes import convert
from ros_nodes.node_process import composed_config, spin_node_process

STEPS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class RecorderNode(Node):
    def __init__(self, config: RecorderConfig | None = None, **kwargs):
        super().__init__("recorder", **kwargs)
        if config is None:
            config = composed_config(self).ros.recorder
        self.recorder = EpisodeRecorder(config, log=self._log)
        self.dropped = 0  # step messages that could not be recorded
        self.create_subscription(UInt8MultiArray, "steps", self._on_step, STEPS_QOS)
        self.create_subscription(Empty, "teleop/success", self._on_success, COMMAND_QOS)
        cameras = "every camera" if config.cameras is None else ", ".join(config.cameras) or "no camera"
        self.get_logger().info(f"recording episodes into {self.recorder.directory.resolve()} ({cameras})")

    def _on_step(self, msg: UInt8MultiArray) -> None:
        try:
            self.recorder.record(StepMessage.from_tree(convert.blob_to_tree(msg)))
        except (ValueError, TypeError) as error:  # TypeError: a field of the wrong kind, e.g. a string reward
            self.dropped += 1
            self.get_logger().warning(f"steps: message dropped: {error}")

    def _on_success(self, _: Empty) -> None:
        if self.recorder.mark_success():
            self.get_logger().info(f"teleop/success: episode {self.recorder.recording} marked a success")
        else:
            self.get_logger().warning("teleop/success: no episode is being recorded; ignored")

    def _log(self, level: int, text: str) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes
        if level >= logging.WARNING:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def destroy_node(self) -> None:
        self.recorder.close("the recorder shut down")
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.recorder_node --ros-args -p 'config_overrides:=[ros.recorder.directory=/data/bags]'`,
    inside a loopback-only network namespace unless the machine's DDS is meant to be reachable."""
    spin_node_process(RecorderNode, args)


if __name__ == "__main__":
    main()
