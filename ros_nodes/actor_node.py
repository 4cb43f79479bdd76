"""The actor: at every observation from the aggregator, the policy's (or the operator's) action
goes out as the robot's command, and the step that just ended goes to the learner and recorder.
The decisions are robot_rl/robot/actor.py's (EpisodeActor); this node only moves messages.

Topics (relative names: one namespace per robot)
  subscribed
    observation           std_msgs/UInt8MultiArray, an ObservationMessage (robot_rl/robot/messages.py),
                          RELIABLE + TRANSIENT_LOCAL depth 1, as the aggregator publishes it
    teleop/action         std_msgs/Float32MultiArray: the operator's spec action
    teleop/intervening    std_msgs/Bool: while true the operator's latest action is executed
    teleop/success        std_msgs/Empty: the episode succeeded (its label), and ends (unless the
                          success_marks parameter is false: labelling frames on the graph)
    teleop/end_episode    std_msgs/Empty: the episode ends (truncated)
    policy/weights        std_msgs/UInt8MultiArray, a WeightsMessage, RELIABLE + TRANSIENT_LOCAL
                          depth 1: an actor that starts late still gets the latest weights
    reward/reply          std_msgs/UInt8MultiArray, a RewardReplyMessage (with a learned reward)
    learner/consumed      std_msgs/Header: the stamp of this actor's step the learner took last
  published
    actor/target_pose     geometry_msgs/PoseStamped (robot.command_interface "pose": an impedance target)
    actor/twist           geometry_msgs/TwistStamped (robot.command_interface "twist": a servo command)
    actor/gripper         std_msgs/Float64, the spec's gripper command
    steps                 std_msgs/UInt8MultiArray, a StepMessage per executed step, RELIABLE depth 100
    reward/request        std_msgs/UInt8MultiArray, a RewardRequestMessage (with a learned reward)
  client
    <reset_service>       std_srvs/Trigger that resets the robot (the twin: sim_twin/reset)
    safety/status         std_msgs/String, latched: the first episode starts once it reads RUNNING

Policy "hold" (ros.actor_policy, for recording demos on the graph): no motion while the operator
does not intervene, and no random exploration steps. With pace_hz > 0 (ros.wall_clock_pace) an
episode's observations are acted on at the ticks of a wall-clock timer at that rate, so a twin in
lockstep goes at the pace of a person at the controls.

Episodes: after the reset service answers, the episode starts with the observation whose stamp
the reply names ("first observation at <ns> ns", as the twin says; it may have arrived before the
reply), or with the first one after the reply (a robot's reset service, which names none). After
an episode's last step the actor asks for the next reset at once.

Rewards: the twin's oracle comes with the observation (sim/privileged through the aggregator). A
learned reward is the reward server's (ros_nodes/reward_server_node.py): when an observation closes
a step, the actor asks for its reward and acts on that observation once the reply is in, since a
reward model's success decision may end the episode there. Meanwhile a newer observation replaces
the one asked about (the step then ends at the newer one); no reply within
ros.reward_server.timeout_s: the actor says so and asks again, and the robot holds (the safety
node's stale-command watchdog).

The commands go to the safety node (actor/* -> command/*), never straight to the controller.
The target pose is the measured pose moved by the action (spec.action_to_target_pose); the
twist is the action scaled to the robot's per-step maxima over one control period.

Keeping pace with the learner: with max_lead_steps > 0 (the graph sets train.max_actor_lead when the
twin steps in lockstep), once a learner has said which step it took last (learner/consumed), the
actor acts on nothing while max_lead_steps of its published steps are not taken yet, and the twin
waits with it, until the learner catches up (then it acts on the newest observation). Counted in
steps, not sim time: while the safety node holds the arm, its holds step the twin on. In lockstep
nothing else paces the graph, and a learner that falls behind trains on the data of ever older
policies. On a robot (real time) the actor never waits.

Weights are decoded on their own callback group, so a large blob never delays a control tick, and
swapped between two ticks. In lockstep (the twin with sim time) the next observation exists only
after this node's command, so the graph runs as fast as the twin steps.
"""

from __future__ import annotations

import re
import threading
from collections import deque

import numpy as np
import torch
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Empty, Float32MultiArray, Float64, Header, String, UInt8MultiArray
from std_srvs.srv import Trigger

from robot_rl import spec
from robot_rl.agents import make_agent
from robot_rl.config import Config
from robot_rl.robot.actor import EpisodeActor, StepReward, operator_reward, oracle_reward
from robot_rl.robot.config import ACTOR_POLICIES
from robot_rl.robot.messages import ObservationMessage, RewardReplyMessage, RewardRequestMessage, WeightsMessage
from robot_rl.spec import ACTION_DIM, flatten_state
from robot_rl.train.learner import policy_camera_sizes
from ros_nodes import convert
from ros_nodes.node_process import composed_config, declare, spin_node_process

FIRST_OBSERVATION = re.compile(r"first observation at (\d+) ns")  # in the twin's reset reply
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
STEPS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class ActorNode(Node):
    def __init__(self, config: Config | None = None, **kwargs):
        super().__init__("actor", **kwargs)
        self.config = config if config is not None else composed_config(self)
        self.interface = self.config.robot.command_interface
        self.base_frame = declare(self, "base_frame", "panda_link0", "frame of the commands")
        reset_service = declare(self, "reset_service", "sim_twin/reset", "std_srvs/Trigger resetting the robot")
        seed = declare(self, "seed", -1, "seed of the random exploration steps; -1: the config's seed")
        policy = declare(self, "policy", "agent", "agent: the policy acts; hold: no motion unless teleoperated")
        if policy not in ACTOR_POLICIES:
            raise ValueError(f"policy: one of {ACTOR_POLICIES}, got {policy!r}")
        self.hold = policy == "hold"  # recording demos: the operator drives, nobody else
        self.max_lead_steps = declare(
            self, "max_lead_steps", 0, "wait while this many steps ahead of the learner (lockstep); 0: never wait"
        )
        pace_hz = declare(self, "pace_hz", 0.0, "act at most at this rate of the wall clock; 0: as observations come")
        # Waits (the pace timer's next tick, the learner, the safety node) are flags: whatever ends
        # one acts on the newest observation, _latest.
        self._waiting_for_pace = False
        self._pace_timer = None
        if pace_hz > 0:
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            self._pace_timer = self.create_timer(1.0 / pace_hz, self._on_pace_tick, clock=steady)
        # stamps of our published steps the learner has not taken yet; None until a learner speaks
        self._untaken: deque[int] | None = None
        self._waiting_for_learner = False
        # a learned reward comes from the reward server; an operator recording (hold) needs none
        self.served_reward = not self.config.reward.is_oracle and not self.hold
        self.agent = None  # built at the first observation, when the state's size is known
        # One thread for torch: acting is a handful of small matrix products, and torch's default
        # pool of spinning intra-op threads starved the graph's other nodes (2.2 -> 20 steps/s on
        # two cores beside a learner).
        torch.set_num_threads(1)
        self._pending_weights: WeightsMessage | None = None
        self.actor = EpisodeActor(
            policy=self._act,
            reward_fn=self._reward_fn(),
            max_episode_steps=self.config.task.max_episode_steps,
            terminate_on_success=self.config.task.terminate_on_success,
            random_steps=0 if self.hold else self.config.train.learning_starts,
            seed=self.config.seed if seed < 0 else seed,
            episode_prefix=self.get_namespace().strip("/").replace("/", "_") or "episode",
        )
        self._human_action: np.ndarray | None = None
        self._intervening = False
        self._lock = threading.Lock()  # the teleop state, written and read on different threads
        self._safety_running = False  # episodes start only while the safety node lets commands through
        self._reset_pending = False  # a reset was asked and has not answered
        self._begin_when_running = False  # an episode waiting for the safety node
        self._resuming = False  # safety/reset and safety/resume asked, not yet answered
        self._first_stamp: int | None = None  # after a reset: the stamp from which the episode starts
        self._latest: ObservationMessage | None = None
        self._awaiting_reward: ObservationMessage | None = None  # asked the reward server about it
        self._asked_at = 0.0  # steady-clock seconds of the last request
        self._served: RewardReplyMessage | None = None  # the reply for _awaiting_reward, taken by reward_fn
        self.bad_messages = 0

        if self.interface == "pose":
            self._command = self.create_publisher(PoseStamped, "actor/target_pose", COMMAND_QOS)
        else:
            self._command = self.create_publisher(TwistStamped, "actor/twist", COMMAND_QOS)
        self._gripper = self.create_publisher(Float64, "actor/gripper", COMMAND_QOS)
        self._steps = self.create_publisher(UInt8MultiArray, "steps", STEPS_QOS)
        self._reset = self.create_client(Trigger, reset_service)
        # on the twin, a hold is cleared after the episode's reset (training goes on); a robot's
        # operator clears it (robot-rl calibrate, or the services) and the actor waits meanwhile
        self.resume_safety = declare(self, "resume_safety", False, "reset + resume the safety node after a reset")
        self._safety_reset = self.create_client(Trigger, "safety/reset")
        self._safety_resume = self.create_client(Trigger, "safety/resume")
        if self.served_reward:
            self._reward_request = self.create_publisher(UInt8MultiArray, "reward/request", COMMAND_QOS)
            self.create_subscription(UInt8MultiArray, "reward/reply", self._on_reward_reply, COMMAND_QOS)
            self._steady = Clock(clock_type=ClockType.STEADY_TIME)
            timeout = self.config.ros.reward_server.timeout_s
            self.create_timer(timeout / 4, self._ask_again_if_unanswered, clock=self._steady)
        self.create_subscription(UInt8MultiArray, "observation", self._on_observation, LATCHED)
        self.create_subscription(Float32MultiArray, "teleop/action", self._on_teleop_action, COMMAND_QOS)
        self.create_subscription(Bool, "teleop/intervening", self._on_intervening, LATCHED)
        if declare(self, "success_marks", True, "the operator's success mark ends the episode as a success"):
            self.create_subscription(Empty, "teleop/success", lambda _: self.actor.mark_success(), COMMAND_QOS)
        self.create_subscription(Empty, "teleop/end_episode", lambda _: self.actor.request_end(), COMMAND_QOS)
        self.create_subscription(String, "safety/status", self._on_safety_status, LATCHED)
        self.create_subscription(Header, "learner/consumed", self._on_learner_consumed, LATCHED)
        self.create_subscription(
            UInt8MultiArray,
            "policy/weights",
            self._on_weights,
            LATCHED,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        # wall time: on sim time (the twin in lockstep) the clock stands still until the first step
        self._start_timer = self.create_timer(
            0.1, self._request_first_reset, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    def _reward_fn(self):
        if self.hold:
            return operator_reward
        return self._take_served_reward if self.served_reward else oracle_reward

    # policy and weights ---------------------------------------------------------------------
    def _act(self, obs: dict) -> np.ndarray:
        if self.hold:
            return np.zeros(ACTION_DIM, np.float32)  # no motion, the gripper as it is
        if self.agent is None:
            c = self.config
            state_dim = len(flatten_state(obs["state"]))
            controlled = c.task.controlled_actions()
            self.agent = make_agent(c.agent, state_dim, ACTION_DIM, policy_camera_sizes(c), "cpu", controlled)
            if self._pending_weights is not None:
                self.agent.load_actor_state_dict(self._pending_weights.agent)
        return self.agent.act(obs)

    def _on_weights(self, msg: UInt8MultiArray) -> None:
        try:
            weights = WeightsMessage.from_tree(convert.blob_to_tree(msg))
        except ValueError as error:
            self.bad_messages += 1
            self.get_logger().error(f"policy/weights dropped: {error}")
            return

        def load() -> None:
            if self.agent is None:
                self._pending_weights = weights
            else:
                self.agent.load_actor_state_dict(weights.agent)

        try:
            self.actor.load_weights(load, weights.version)
        except (KeyError, RuntimeError, ValueError) as error:  # another agent's weights: say so, keep acting
            self.bad_messages += 1
            self.get_logger().error(f"policy/weights version {weights.version} do not fit this policy: {error}")
            return
        self.get_logger().info(f"policy weights version {weights.version} loaded", throttle_duration_sec=10.0)

    # teleop -----------------------------------------------------------------------------------
    def _on_teleop_action(self, msg: Float32MultiArray) -> None:
        action = np.asarray(msg.data, np.float32)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            self.bad_messages += 1
            self.get_logger().warning(f"teleop/action dropped: expected {ACTION_DIM} finite values, got {msg.data}")
            return
        with self._lock:
            self._human_action = np.clip(action, -1.0, 1.0)

    def _on_intervening(self, msg: Bool) -> None:
        if not self.actor.set_intervening(bool(msg.data)):
            self.get_logger().warning("teleop: an intervention begun during the reset is ignored until released")
        with self._lock:
            self._intervening = bool(msg.data)
            if not self._intervening:  # a new intervention must never replay the last one's action
                self._human_action = None

    def _operator_action(self) -> np.ndarray | None:
        with self._lock:
            return self._human_action if self._intervening and self._human_action is not None else None

    # episodes ---------------------------------------------------------------------------------
    def _on_safety_status(self, msg: String) -> None:
        running = msg.data.startswith("RUNNING")
        if self._safety_running and not running and self.actor.in_episode:
            # the safety node's holds, not our actions, move the arm now: no step of ours after this
            self.get_logger().warning(f"safety: {msg.data}: the episode ends here")
            self.actor.request_end()
        self._safety_running = running
        if running and self._begin_when_running:
            self._begin_when_running = False
            self._begin(self._latest)
        elif msg.data.startswith("HOLDING") and self.resume_safety and not self.actor.in_episode:
            self._resume_safety()

    def _resume_safety(self) -> None:
        """The twin: after a hold (a force fault, a stop) the reset arm can move again: reset, resume."""
        if self._resuming:
            return
        self._resuming = True

        def resume(future) -> None:
            self._safety_resume.call_async(Trigger.Request()).add_done_callback(done)

        def done(future) -> None:
            self._resuming = False
            self.get_logger().info(f"safety resumed after the reset: {future.result().message}")

        self._safety_reset.call_async(Trigger.Request()).add_done_callback(resume)

    def _request_first_reset(self) -> None:
        if self._reset.service_is_ready() and self._safety_running:
            self.destroy_timer(self._start_timer)
            self._request_reset()

    def _request_reset(self) -> None:
        self._reset_pending, self._first_stamp = True, None
        self._reset.call_async(Trigger.Request()).add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        response = future.result()
        if not response.success:
            self.get_logger().error(f"reset failed: {response.message}; trying again")
            self._request_reset()
            return
        # The twin's reply names its first observation's stamp: that one starts the episode, whether
        # it arrived before this reply or comes after. A robot's reset service says nothing of the
        # kind: its first observation after the reply starts the episode.
        match = FIRST_OBSERVATION.search(response.message)
        self._first_stamp = int(match.group(1)) if match else self._latest_stamp() + 1
        self._reset_pending = False
        latest = self._latest
        if latest is not None and latest.stamp_ns == self._first_stamp:
            self._begin(latest)

    def _latest_stamp(self) -> int:
        return self._latest.stamp_ns if self._latest is not None else -1

    def _begin(self, message: ObservationMessage) -> None:
        """Start an episode at `message`, the newest observation."""
        self._first_stamp = None
        if not self._safety_running:  # an episode the safety node would hold: once it runs again
            self._begin_when_running = True
            if self.resume_safety:
                self._resume_safety()
            return
        episode = self.actor.start_episode()
        self.get_logger().info(f"{episode} starts at {message.stamp_ns} ns", throttle_duration_sec=5.0)
        self._tick(message)

    def _on_episode_observation(self, message: ObservationMessage, paced: bool = False) -> None:
        if self._pace_timer is not None and not paced:
            self._waiting_for_pace = True
            return
        if self._ahead_of_learner():
            self._waiting_for_learner = True
            return
        if self.served_reward and self.actor.open_step() is not None:
            self._ask_reward(message)  # the tick waits for the reply
        else:
            self._tick(message)

    # pace ---------------------------------------------------------------------------------------
    def _ahead_of_learner(self) -> bool:
        """Counted in steps, not sim time: sim time also runs on while the safety node holds the arm."""
        return self.max_lead_steps > 0 and self._untaken is not None and len(self._untaken) >= self.max_lead_steps

    def _on_pace_tick(self) -> None:
        if self._waiting_for_pace and self.actor.in_episode:
            self._waiting_for_pace = False
            self._on_episode_observation(self._latest, paced=True)

    def _on_learner_consumed(self, msg: Header) -> None:
        taken = convert.time_ns(msg.stamp)
        if self._untaken is None:
            self._untaken = deque()  # steps published before the learner spoke are not counted
        while self._untaken and self._untaken[0] <= taken:
            self._untaken.popleft()
        if self._waiting_for_learner and not self._ahead_of_learner():
            self._waiting_for_learner = False
            if self.actor.in_episode:
                self._on_episode_observation(self._latest)

    # the reward server ------------------------------------------------------------------------
    def _ask_reward(self, message: ObservationMessage) -> None:
        action, policy_action, intervention_start = self.actor.open_step()
        request = RewardRequestMessage(message.stamp_ns, message.obs, action, policy_action, intervention_start)
        self._awaiting_reward, self._asked_at = message, self._now()
        self._reward_request.publish(convert.tree_to_blob(request.to_tree()))

    def _on_reward_reply(self, msg: UInt8MultiArray) -> None:
        try:
            reply = RewardReplyMessage.from_tree(convert.blob_to_tree(msg))
        except ValueError as error:
            self.bad_messages += 1
            self.get_logger().error(f"reward/reply dropped: {error}")
            return
        awaiting = self._awaiting_reward
        if awaiting is None or reply.stamp_ns != awaiting.stamp_ns:
            return  # an answer to a request since replaced by a newer observation's, or asked twice
        if reply.error:
            self.bad_messages += 1
            self.get_logger().error(f"reward server: {reply.error}; asking again in {self._timeout():.1f} s")
            return
        self._awaiting_reward, self._served = None, reply
        self._tick(awaiting)

    def _take_served_reward(self, message: ObservationMessage, action: np.ndarray) -> StepReward:
        reply, self._served = self._served, None
        if reply is None or reply.stamp_ns != message.stamp_ns:
            raise RuntimeError(f"no reward from the reward server for the observation at {message.stamp_ns} ns")
        return StepReward(reply.reward, reply.success, reply.start_reward)

    def _ask_again_if_unanswered(self) -> None:
        if self._awaiting_reward is not None and self._now() - self._asked_at > self._timeout():
            self.get_logger().error(
                f"no reward from the reward server for {self._now() - self._asked_at:.1f} s "
                "(is it running? ros.reward_server.in_graph): asking again; the robot holds meanwhile",
                throttle_duration_sec=10.0,
            )
            self._ask_reward(self._awaiting_reward)

    def _timeout(self) -> float:
        return self.config.ros.reward_server.timeout_s

    def _now(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _on_observation(self, msg: UInt8MultiArray) -> None:
        try:
            message = ObservationMessage.from_tree(convert.blob_to_tree(msg))
        except ValueError as error:
            self.bad_messages += 1
            self.get_logger().error(f"observation dropped: {error}")
            return
        if message.stamp_ns <= self._latest_stamp():
            self.bad_messages += 1
            self.get_logger().warning(f"observation at {message.stamp_ns} ns is not newer than {self._latest_stamp()}")
            return
        self._latest = message
        if self.actor.in_episode:
            self._on_episode_observation(message)
        elif not self._reset_pending and self._first_stamp is not None and message.stamp_ns >= self._first_stamp:
            self._begin(message)

    def _tick(self, message: ObservationMessage) -> None:
        action, step = self.actor.on_observation(message, self._operator_action())
        if step is not None:
            self._steps.publish(convert.tree_to_blob(step.to_tree()))
            if self._untaken is not None:
                self._untaken.append(step.stamp_ns)
        if action is None:
            self._request_reset()
            return
        self._publish_command(action, message)

    def _publish_command(self, action: np.ndarray, message: ObservationMessage) -> None:
        r = self.config.robot
        stamp = message.stamp_ns
        if self.interface == "pose":
            tcp_pose = message.obs["state"]["tcp_pose"].astype(np.float64)
            target = spec.action_to_target_pose(action, tcp_pose, r.max_translation_step, r.max_rotation_step)
            self._command.publish(convert.tcp_pose_to_pose(target, stamp, self.base_frame))
        else:
            period = 1.0 / self.config.sim.control_hz
            scale = np.array([r.max_translation_step] * 3 + [r.max_rotation_step] * 3) / period
            self._command.publish(convert.tcp_vel_to_twist(action[:6] * scale, stamp, self.base_frame))
        self._gripper.publish(Float64(data=float(action[6])))


def main(args: list[str] | None = None) -> None:
    spin_node_process(ActorNode, args)


if __name__ == "__main__":
    main()
