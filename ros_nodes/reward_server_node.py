"""The reward server: the configured reward model (`reward=...`, a learned or zero-shot one) scores
every robot's steps, batched across robots by robot_rl/rewards/server.py's RewardServer, on the
device it is given (ros.reward_server.device: the GPU where there is one).

Topics, for each robot namespace in ros.namespaces (one server serves them all)
  subscribed  <ns>/reward/request  std_msgs/UInt8MultiArray, a RewardRequestMessage
                                   (robot_rl/robot/messages.py): the observation a step led to,
                                   the executed and the policy's actions and whether an
                                   intervention started with the step (then both are scored)
  published   <ns>/reward/reply    std_msgs/UInt8MultiArray, a RewardReplyMessage for the same stamp
Both RELIABLE, depth 10: an actor has one request out at a time.

Requests arriving within ros.reward_server.max_wait_s of each other share one model call (up to
max_batch). A request that does not decode is logged and dropped (the actor asks again after its
timeout); one the model cannot score is answered with the error, so the actor says why at once.
The replies are published from the batching worker's thread as each batch completes.
"""

from __future__ import annotations

import math
from concurrent.futures import Future

import torch
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray

from robot_rl.config import Config, ConfigError
from robot_rl.rewards import check_reward_cameras, make_reward_model
from robot_rl.rewards.base import RewardInput, RewardOutput
from robot_rl.rewards.server import RewardServer
from robot_rl.robot.messages import RewardReplyMessage, RewardRequestMessage
from ros_nodes import convert
from ros_nodes.node_process import composed_config, spin_node_process

REWARD_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
STATS_PERIOD_S = 10.0


class RewardServerNode(Node):
    def __init__(self, config: Config | None = None, **kwargs):
        super().__init__("reward_server", **kwargs)
        self.server: RewardServer | None = None  # rclpy destroys a node whose set-up failed too
        self.config = config if config is not None else composed_config(self)
        settings = self.config.ros.reward_server
        model = make_reward_model(self.config.reward, settings.device)
        if model is None:
            raise ConfigError(
                f"reward: {self.config.reward.name!r} is the twin's oracle; the reward server serves reward models"
            )
        check_reward_cameras(model, self.config.sim.cameras)
        if settings.max_batch < 2:
            raise ConfigError(
                f"ros.reward_server.max_batch: must be >= 2 (a step where an intervention starts "
                f"scores two actions), got {settings.max_batch}"
            )
        self.model, self.device = model, torch.device(settings.device)
        # One thread for torch on a CPU: its default pool of spinning workers starves the graph's
        # other nodes on a small machine; a GPU does the work anyway.
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        self.server = RewardServer(model, settings)
        self.bad_requests = 0
        self._replies = {}
        for namespace in self.config.ros.namespaces:
            prefix = namespace.rstrip("/")
            self._replies[prefix] = self.create_publisher(UInt8MultiArray, f"{prefix}/reward/reply", REWARD_QOS)
            self.create_subscription(
                UInt8MultiArray,
                f"{prefix}/reward/request",
                lambda msg, ns=prefix: self._on_request(msg, ns),
                REWARD_QOS,
            )
        self.create_timer(STATS_PERIOD_S, self._log_stats)
        self.get_logger().info(
            f"serving reward {self.config.reward.name!r} on {self.device} to {[ns or '/' for ns in self._replies]}"
        )

    def _on_request(self, msg: UInt8MultiArray, namespace: str) -> None:
        try:
            request = RewardRequestMessage.from_tree(convert.blob_to_tree(msg))
        except ValueError as error:
            self.bad_requests += 1
            self.get_logger().error(f"{namespace}/reward/request dropped: {error}")
            return
        # Row 0 scores the executed action. Where the operator took over, row 1 scores the policy's
        # action with the start: RLIF's penalty is the policy's, not the correction's.
        rows = [(request.action, False)]
        if request.intervention_start:
            rows.append((request.policy_action, True))
        try:
            inputs = RewardInput.concatenate(
                [
                    RewardInput.from_observation(request.obs, self.model.cameras, action, self.device, start)
                    for action, start in rows
                ]
            )
            future = self.server.submit(inputs)
        except (KeyError, ValueError, TypeError, RuntimeError) as error:  # a missing camera, a closed server
            self.bad_requests += 1
            self._reply(namespace, RewardReplyMessage(request.stamp_ns, math.nan, False, error=f"not scored: {error}"))
            return
        future.add_done_callback(lambda done: self._on_scored(done, namespace, request.stamp_ns))

    def _on_scored(self, future: Future[RewardOutput], namespace: str, stamp_ns: int) -> None:
        error = future.exception()
        if error is not None:
            self.get_logger().error(f"the reward model failed on {namespace}'s step at {stamp_ns} ns: {error}")
            self._reply(namespace, RewardReplyMessage(stamp_ns, math.nan, False, error=f"model failed: {error}"))
            return
        output = future.result()
        success = bool(output.success[0]) if output.success is not None else False
        start_reward = float(output.reward[1]) if len(output.reward) > 1 else math.nan
        self._reply(namespace, RewardReplyMessage(stamp_ns, float(output.reward[0]), success, start_reward))

    def _reply(self, namespace: str, reply: RewardReplyMessage) -> None:
        self._replies[namespace].publish(convert.tree_to_blob(reply.to_tree()))

    def _log_stats(self) -> None:
        stats = self.server.stats()
        if stats.batches:
            self.get_logger().info(
                f"{stats.observations} steps scored in {stats.batches} model calls "
                f"(mean batch {stats.mean_batch_size:.1f}, {stats.failed_batches} failed)"
            )

    def destroy_node(self) -> None:
        if self.server is not None:
            self.server.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    spin_node_process(RewardServerNode, args)


if __name__ == "__main__":
    main()
