"""The ROS graph in one process: every node of robot_rl/robot/graph.py's description, each on
its own executor thread. `robot-rl graph` runs it until Ctrl-C; `robot-rl train train.transport=ros`
runs that as a child process beside the learner (RosActors), which trains on the steps its actors
publish; `robot-rl demos|label hil.operator.graph=true` runs it with the teleop node and an actor
that holds still unless the operator drives, until enough demos (the recorder's bags) or labelled
frames are in.

ros2 launch (launch/*.launch.py) starts the same description as one process per node.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from robot_rl.config import Config, ConfigError, load_config
from robot_rl.robot.graph import NodeSpec, graph_nodes

log = logging.getLogger(__name__)
GRAPH_STOP_S = 30.0  # for the child graph to close its nodes (and bags) after Ctrl-C


def ros_parameters(parameters: dict) -> list[Parameter]:
    """Node parameter overrides; an empty list is typed as a string array (rclpy cannot infer it)."""
    return [
        Parameter(name, Parameter.Type.STRING_ARRAY, []) if value == [] else Parameter(name, value=value)
        for name, value in parameters.items()
    ]


def build_node(spec: NodeSpec) -> Node:
    node_class = getattr(importlib.import_module(spec.node.module), spec.node.class_name)
    remaps = [arg for old, new in spec.remappings.items() for arg in ("-r", f"{old}:={new}")]
    return node_class(
        namespace=spec.namespace or "/",
        parameter_overrides=ros_parameters(spec.parameters),
        cli_args=["--ros-args", *remaps] if remaps else None,
    )


@contextmanager
def running_graph(config: Config, overrides: list[str], extra_nodes: tuple[Node, ...] = ()):
    """The graph's nodes (and `extra_nodes`) spinning, each on its own executor thread; yields the
    nodes. rclpy must be initialised; every node is destroyed on exit.

    One single-threaded executor per node rather than one multi-threaded executor for all: a
    callback that waits (the twin stepping its physics on its own thread) leaves its node's other
    subscriptions ready but not runnable, and rclpy's MultiThreadedExecutor then polls them in a
    hot loop that holds the GIL, slowing a lockstep step from milliseconds to a second."""
    nodes: list[Node] = []
    executors: list[tuple[SingleThreadedExecutor, threading.Thread]] = []
    try:
        for spec in graph_nodes(config, overrides):
            nodes.append(build_node(spec))
            log.info("started %s in %s", spec.kind, spec.namespace or "/")
        for node in (*nodes, *extra_nodes):
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            thread = threading.Thread(target=_spin, args=(executor,), name=node.get_name(), daemon=True)
            thread.start()
            executors.append((executor, thread))
        yield nodes
    finally:
        for executor, thread in executors:
            executor.shutdown()
            thread.join()
        for node in nodes:
            node.destroy_node()


def _spin(executor: Executor) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass


def run_graph(config: Config, overrides: list[str]) -> None:
    """`robot-rl graph`: until Ctrl-C or SIGTERM. rclpy's own signal handlers would invalidate the
    context under callbacks still publishing; instead the signal ends the wait here, and the nodes'
    executors stop before the context does."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    # Ctrl-C, and SIGTERM as ros2 launch sends it, raise KeyboardInterrupt here (also where a shell
    # started this in the background with SIGINT ignored)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        with running_graph(config, overrides):
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()


def train_over_ros(config: Config, run_dir: Path, overrides: list[str]) -> dict:
    """`robot-rl train train.transport=ros`: the learner takes its steps from the graph's actors over
    DDS and pushes weights back. With ros.start_graph the graph runs as a child process
    (`robot-rl graph`, in this process's network namespace and ROS domain): in this process its
    nodes would compete with the learner's updates for the GIL. Else it runs elsewhere."""
    from robot_rl.train.learner import Trainer
    from ros_nodes.learner_node import RosActors

    rclpy.init()
    graph = None
    try:
        trainer = Trainer(config, run_dir)
        actors = RosActors(config.agent, list(config.ros.namespaces))
        if config.ros.start_graph:
            # a resumed run's actors act randomly only for what is left of learning_starts
            random_steps = max(0, config.train.learning_starts - trainer.step)
            graph_overrides = [*overrides, f"train.learning_starts={random_steps}"]
            graph = subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "graph", *graph_overrides])
            log.info("graph started as process %d", graph.pid)
        executor = SingleThreadedExecutor()
        executor.add_node(actors)
        spinner = threading.Thread(target=_spin, args=(executor,), name="learner", daemon=True)
        spinner.start()
        try:
            return trainer.train(actors)
        finally:
            executor.shutdown()
            spinner.join()
            actors.destroy_node()
    finally:
        if graph is not None:
            graph.send_signal(signal.SIGINT)  # robot-rl graph's Ctrl-C: nodes close (bags included)
            try:
                graph.wait(timeout=GRAPH_STOP_S)
            except subprocess.TimeoutExpired:
                graph.kill()
        rclpy.try_shutdown()


def operator_session(session, config: Config, run_dir: Path, overrides: list[str]) -> dict:
    """`robot-rl demos|label hil.operator.graph=true`: rclpy around demos_on_graph or labels_on_graph,
    which end when done or at Ctrl-C (handled as run_graph does)."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        return session(config, run_dir, overrides)
    finally:
        rclpy.try_shutdown()


def operator_graph_overrides(overrides: list[str]) -> list[str]:
    """The graph an operator drives: the teleop node, an actor that holds still while the operator
    does not intervene (ros.actor_policy=hold), at the control rate of the wall clock (a twin in
    lockstep at the operator's pace: ros.wall_clock_pace)."""
    # no reward server: steps recorded for an operator carry no learned reward (actor.operator_reward)
    return [
        *overrides,
        "ros.teleop=true",
        "ros.actor_policy=hold",
        "ros.wall_clock_pace=true",
        "ros.reward_server.in_graph=false",
    ]


def demos_on_graph(config: Config, run_dir: Path, overrides: list[str], poll_s: float = 0.2) -> dict:
    """Teleoperated demos through the graph (the twin's or a robot's topics), the recorder writing
    every episode to run_dir/demos, until `config.episodes` recorded episodes end in success (the
    success key, or on the twin its ground truth) or Ctrl-C; the summary goes to run_dir/demos.json
    and is returned. rclpy must be initialised."""
    from robot_rl.data.bags import read_episode_bag

    demos = run_dir / "demos"
    graph_overrides = [*operator_graph_overrides(overrides), "ros.record=true", f"ros.recorder.directory={demos}"]
    episodes: list[dict] = []
    stopped = ""
    with running_graph(load_config(graph_overrides), graph_overrides) as nodes:
        recorders = [node.recorder for node in nodes if type(node).__name__ == "RecorderNode"]
        log.info("drive with the teleop device; the success key ends an episode as a success")
        try:
            while sum(e["success"] for e in episodes) < config.episodes:
                time.sleep(poll_s)
                saved = [path for recorder in recorders for path in recorder.saved]
                for path in saved[len(episodes) :]:
                    episode = read_episode_bag(path)
                    episodes.append({"bag": str(path), "steps": len(episode), "success": episode.success})
                    label = "success" if episode.success else "no success"
                    log.info("%s: %d steps, %s", path.name, len(episode), label)
        except KeyboardInterrupt:
            stopped = "stopped by the operator (Ctrl-C)"
    summary = {
        "task": config.task.name,
        "bags": str(demos),
        "episodes": len(episodes),
        "successes": sum(e["success"] for e in episodes),
        "stopped": stopped,
        "per_episode": episodes,
    }
    (run_dir / "demos.json").write_text(json.dumps(summary, indent=2))
    return summary


def labels_on_graph(config: Config, run_dir: Path, overrides: list[str], poll_s: float = 0.2) -> dict:
    """Success labels through the graph: the actor's steps' frames of the classifier's cameras,
    labelled by the operator's held success key (ros_nodes/label_collector_node.py), until the
    quotas of hil.operator are met or Ctrl-C; files in run_dir/labels, the summary in
    run_dir/labels.json (returned). rclpy must be initialised."""
    from robot_rl.hil.operator import LabelQuota, label_cameras, write_label_summary
    from ros_nodes.label_collector_node import LabelCollectorNode

    cameras, _ = label_cameras(config)  # frames at the aggregator's size: train-reward fits them
    missing = [cam for cam in cameras if cam not in config.sim.cameras]
    if missing:
        raise ConfigError(f"sim.cameras: the graph's observations lack {missing}, which labelling stores")
    quota = LabelQuota(config.hil.operator.positives, config.hil.operator.negatives_per_positive)
    collector = LabelCollectorNode(cameras, run_dir / "labels", config.task.name, quota, list(config.ros.namespaces))
    # holding the success key labels frames: it must not end the episode, as a demo's mark does
    graph_overrides = [*operator_graph_overrides(overrides), "ros.success_marks_end_episodes=false"]
    stopped = ""
    try:
        with running_graph(load_config(graph_overrides), graph_overrides, extra_nodes=(collector,)):
            log.info("drive with the teleop device; hold the success key while the scene shows success")
            try:
                while not collector.done.wait(poll_s):
                    pass
            except KeyboardInterrupt:
                stopped = "stopped by the operator (Ctrl-C)"
        collector.save_open_episodes()
    finally:
        collector.destroy_node()
    return write_label_summary(config, run_dir, cameras, collector.episodes_saved, quota, stopped)
