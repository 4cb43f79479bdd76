"""The twin node in lockstep, driven over ROS 2 by a small client node in the same process (one
MultiThreadedExecutor), against a SimTwinEnv stepped with the same actions from the same seed.
Runs only inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading
from collections import defaultdict
from functools import partial

import numpy as np
import pytest
from client import TIMEOUT, ClientNode, wait_until
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from robot_rl import spec
from robot_rl.config import load_config
from robot_rl.rollout import make_env
from robot_rl.sim.panda import FINGER_MAX_OPENING
from ros_nodes import convert
from ros_nodes.twin_node import TwinNode

SEED = 7
CAMERAS = ("front", "wrist")
# small non-square frames: a transposed image cannot pass
CAMERA_OVERRIDES = [
    f"sim.camera_rigs.{cam}.{key}={value}" for cam in CAMERAS for key, value in (("width", 40), ("height", 24))
]
BASE = "panda_link0"


class Client(ClientNode):
    """What a ROS env / actor will do, reduced to the test: gather the twin's messages by stamp,
    send target poses and gripper commands, read /clock and the twin's log on /rosout."""

    def __init__(self):
        super().__init__("twin_client", log_of="sim_twin")
        self.topics = {f"cameras/{cam}/image_raw": Image for cam in CAMERAS} | {
            "ft_sensor/wrench": WrenchStamped,
            "joint_states": JointState,
            "tcp/pose": PoseStamped,
            "tcp/twist": TwistStamped,
        }
        self.by_stamp: dict[int, dict] = defaultdict(dict)
        self.clock_ns: list[int] = []
        self.sensor_qos_frames = 0
        # reliable + transient local: also gets the observation the twin published before we joined
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        for topic, kind in self.topics.items():
            self.create_subscription(kind, topic, partial(self._store, topic), latched)
        self.create_subscription(Clock, "/clock", self._on_clock, latched)
        # what a best-effort sensor subscriber (the aggregator) would use must match too
        self.create_subscription(Image, "cameras/front/image_raw", self._on_sensor_qos, qos_profile_sensor_data)
        command_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.target = self.create_publisher(PoseStamped, "command/target_pose", command_qos)
        self.gripper = self.create_publisher(Float64, "command/gripper", command_qos)
        self.reset_client = self.create_client(Trigger, "sim_twin/reset")

    def _store(self, topic: str, msg) -> None:
        with self.changed:
            self.by_stamp[convert.time_ns(msg.header.stamp)][topic] = msg
            self.changed.notify_all()

    def _on_clock(self, msg: Clock) -> None:
        self.add(self.clock_ns, convert.time_ns(msg.clock))

    def _on_sensor_qos(self, msg: Image) -> None:
        self.sensor_qos_frames += 1

    def observation(self, after_ns: int) -> tuple[int, dict]:
        """The first complete observation stamped after `after_ns`, in the spec's layout (float64)."""

        def complete():
            stamps = [t for t, msgs in self.by_stamp.items() if t > after_ns and len(msgs) == len(self.topics)]
            return min(stamps) if stamps else None

        stamp = self.wait_for(complete, f"an observation after {after_ns} ns")
        msgs = self.by_stamp[stamp]
        fingers = convert.joint_state_field(msgs["joint_states"], ["panda_finger_joint1", "panda_finger_joint2"])
        obs = {
            "images": {cam: convert.image_to_rgb(msgs[f"cameras/{cam}/image_raw"]) for cam in CAMERAS},
            "tcp_pose": convert.pose_to_tcp_pose(msgs["tcp/pose"], frame_id=BASE),
            "tcp_vel": convert.twist_to_tcp_vel(msgs["tcp/twist"], frame_id=BASE),
            "gripper": convert.gripper_opening(fingers, FINGER_MAX_OPENING),
            "wrench": convert.wrench_to_array(msgs["ft_sensor/wrench"], frame_id="panda_ft_sensor"),
            "msgs": msgs,
        }
        return stamp, obs

    def command(self, target_pose: np.ndarray, gripper: float, stamp_ns: int, frame_id: str = BASE) -> None:
        self.gripper.publish(Float64(data=float(gripper)))
        self.target.publish(convert.tcp_pose_to_pose(target_pose, stamp_ns, frame_id))


@pytest.fixture
def task() -> str:
    return "pick_cube"  # the gripper matters here; peg_insert turns about z (parametrised below)


@pytest.fixture
def overrides(task) -> list[str]:
    return [f"task={task}", *CAMERA_OVERRIDES]


@pytest.fixture
def graph(ros, overrides):
    """The twin and the client on one MultiThreadedExecutor, spinning in a thread."""
    twin = TwinNode(parameter_overrides=[Parameter("config_overrides", value=overrides), Parameter("seed", value=SEED)])
    client = Client()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(twin)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    wait_until(
        lambda: client.target.get_subscription_count() >= 1 and client.gripper.get_subscription_count() >= 1,
        "the twin's command subscriptions never matched",
    )
    yield twin, client
    executor.shutdown()
    spinner.join(timeout=TIMEOUT)
    client.destroy_node()
    twin.destroy_node()


@pytest.fixture
def reference(overrides):
    env = make_env(load_config(overrides))
    yield env
    env.close()


def assert_same_observation(ros_obs: dict, env_obs: dict) -> None:
    for cam in CAMERAS:
        np.testing.assert_array_equal(ros_obs["images"][cam], env_obs["images"][cam], err_msg=f"image {cam}")
    state = env_obs["state"]
    np.testing.assert_allclose(ros_obs["tcp_pose"], state["tcp_pose"], atol=2e-6, err_msg="tcp_pose")
    np.testing.assert_allclose(ros_obs["tcp_vel"], state["tcp_vel"], atol=2e-5, err_msg="tcp_vel")
    np.testing.assert_allclose(ros_obs["gripper"], state["gripper"], atol=1e-6, err_msg="gripper")
    np.testing.assert_allclose(ros_obs["wrench"], state["wrench"][:6], rtol=1e-6, atol=1e-5, err_msg="wrench")


def step_both(client: Client, reference, stamp: int, obs: dict, action: np.ndarray) -> tuple[int, dict, dict]:
    """Send `action` as a target pose + gripper command; step the reference env with it too."""
    robot = reference.robot_cfg
    target = spec.action_to_target_pose(action, obs["tcp_pose"], robot.max_translation_step, robot.max_rotation_step)
    client.command(target, action[6], stamp)
    new_stamp, new_obs = client.observation(after_ns=stamp)
    env_obs, *_ = reference.step(action)
    return new_stamp, new_obs, env_obs


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_lockstep_observations_match_the_env(graph, reference, task):
    twin, client = graph
    env_obs, _ = reference.reset(seed=SEED)
    stamp, obs = client.observation(after_ns=0)  # published at start-up, before the client joined
    assert_same_observation(obs, env_obs)

    rng = np.random.default_rng(0)
    period = twin.period_ns
    for gripper in (-1.0, 1.0, 0.0, 0.2, -0.9, 0.0):  # open, close, keep, keep, open, keep
        action = np.append(rng.uniform(-1, 1, 6), gripper)
        new_stamp, obs, env_obs = step_both(client, reference, stamp, obs, action)
        assert new_stamp == stamp + period, "one command, one control period of sim time"
        assert_same_observation(obs, env_obs)
        stamp = new_stamp
        client.wait_for(lambda s=stamp: s in client.clock_ns, f"/clock at {stamp}")
    assert client.clock_ns == sorted(client.clock_ns), "/clock went backwards"
    assert twin.rejected_commands == 0

    msgs = obs["msgs"]
    front = msgs["cameras/front/image_raw"]
    assert (front.encoding, front.width, front.height, front.step, front.header.frame_id) == (
        "rgb8",
        40,
        24,
        120,
        "front_camera",
    )
    assert list(msgs["joint_states"].name) == [f"panda_joint{i}" for i in range(1, 8)] + [
        "panda_finger_joint1",
        "panda_finger_joint2",
    ]
    assert client.sensor_qos_frames > 0, "a sensor-data QoS subscriber received no image"
    types = dict(client.get_topic_names_and_types())
    assert types["/tcp/pose"] == ["geometry_msgs/msg/PoseStamped"] and types["/clock"] == ["rosgraph_msgs/msg/Clock"]
    assert types["/command/target_pose"] == ["geometry_msgs/msg/PoseStamped"]


def test_malformed_commands_are_rejected_and_logged(graph, reference):
    twin, client = graph
    env_obs, _ = reference.reset(seed=SEED)
    stamp, obs = client.observation(after_ns=0)
    target = obs["tcp_pose"].copy()
    bad = [
        (np.array([np.nan, *target[1:]]), 0.0, BASE, "PoseStamped.pose.position.x is nan"),
        (target, 0.0, "world", "PoseStamped.header.frame_id is 'world', expected 'panda_link0'"),
        (np.array([*target[:3], 0.0, 0.0, 0.0, 0.0]), 0.0, BASE, "not a unit quaternion"),
        (target, float("inf"), BASE, "Float64.data (gripper command) is inf"),
    ]
    for pose, gripper, frame, reason in bad:
        client.command(pose, gripper, stamp, frame_id=frame)
        client.wait_for(lambda r=reason: any(r in line for line in client.log), f"the log line {reason!r}")
    assert twin.rejected_commands == len(bad)
    assert max(client.by_stamp) == stamp, "a rejected command stepped the twin"
    assert all(line.startswith("command rejected, no step: ") for line in client.log)

    # the node is still there, and in step with the env: a rejected command moved nothing
    _, obs, env_obs = step_both(client, reference, stamp, obs, np.array([0.5, -0.3, 0.2, 0, 0, 0, 1.0]))
    assert_same_observation(obs, env_obs)


def test_reset_service_starts_the_next_episode(graph, reference):
    _, client = graph
    reference.reset(seed=SEED)
    stamp, obs = client.observation(after_ns=0)
    stamp, obs, _ = step_both(client, reference, stamp, obs, np.array([1.0, 0, -1.0, 0, 0, 0, 1.0]))

    assert client.reset_client.wait_for_service(timeout_sec=TIMEOUT)
    future = client.reset_client.call_async(Trigger.Request())
    client.wait_for(future.done, "the ~/reset response")
    assert future.result().success
    new_stamp, obs = client.observation(after_ns=stamp)
    assert new_stamp > stamp, "sim time never goes back, across episodes too"
    assert future.result().message == f"new episode, first observation at {new_stamp} ns"
    env_obs, _ = reference.reset()  # the next episode of the same seeded stream
    assert_same_observation(obs, env_obs)
