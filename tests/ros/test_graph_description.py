"""The graph's node set (robot_rl/robot/graph.py) and the launch files built from it: every node
named exists (module, class, console script), parameters come from the composed config, and the
launch files compile and use the description rather than a copy of it. Starts no node."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
import tomllib

from robot_rl.config import ConfigError, load_config
from robot_rl.robot.graph import NODE_KINDS, graph_nodes

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))


def test_every_node_kind_names_a_module_class_and_console_script():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for kind, node in NODE_KINDS.items():
        module = importlib.import_module(node.module)
        assert hasattr(module, node.class_name), f"{kind}: {node.module} has no {node.class_name}"
        assert callable(getattr(module, "main", None)), f"{kind}: {node.module} has no main()"
        assert scripts.get(node.executable) == f"{node.module}:main", f"{kind}: console script {node.executable}"


def test_the_twin_graph_per_namespace_with_the_same_overrides():
    overrides = ["task=reach", "ros.namespaces=[/robot_a,/robot_b]", "ros.record=true"]
    specs = graph_nodes(load_config(overrides), overrides)
    for namespace in ("/robot_a", "/robot_b"):
        kinds = [s.kind for s in specs if s.namespace == namespace]
        assert kinds == ["twin", "aggregator", "safety", "actor", "recorder"]
    assert all(s.parameters["config_overrides"] == overrides and s.parameters["use_sim_time"] for s in specs)
    actor = next(s for s in specs if s.kind == "actor")
    assert actor.parameters["reset_service"] == "sim_twin/reset"
    # each robot its own clock (its twin's sim time), episodes and exploration
    for namespace in ("/robot_a", "/robot_b"):
        assert all(s.remappings == {"/clock": f"{namespace}/clock"} for s in specs if s.namespace == namespace)
    for kind in ("twin", "actor"):
        assert [s.parameters["seed"] for s in specs if s.kind == kind] == [0, 1]


def test_the_actors_pace_policy_and_success_marks_come_from_the_config():
    def actor(overrides: list[str]) -> dict:
        return next(s for s in graph_nodes(load_config(overrides), overrides) if s.kind == "actor").parameters

    # in lockstep only the learner's pace holds the twin back; a robot (wall time) never waits for it
    lockstep = actor(["train.max_actor_lead=7"])
    assert (lockstep["max_lead_steps"], lockstep["pace_hz"], lockstep["policy"], lockstep["success_marks"]) == (
        7,
        0.0,
        "agent",
        True,
    )
    assert actor(["ros.twin=false"])["max_lead_steps"] == 0
    operator = actor(["ros.actor_policy=hold", "ros.wall_clock_pace=true", "ros.success_marks_end_episodes=false"])
    assert (operator["policy"], operator["pace_hz"], operator["success_marks"]) == ("hold", 10.0, False)
    assert actor(["ros.twin=false", "ros.wall_clock_pace=true"])["pace_hz"] == 0.0  # a robot keeps its own time
    with pytest.raises(ConfigError, match="ros.actor_policy"):
        load_config(["ros.actor_policy=replay"])


def test_a_learned_reward_adds_one_reward_server_for_all_robots():
    overrides = ["reward=intervention", "ros.namespaces=[/robot_a,/robot_b]"]
    specs = graph_nodes(load_config(overrides), overrides)
    servers = [s for s in specs if s.kind == "reward_server"]
    assert [s.namespace for s in servers] == [""]
    assert servers[0].parameters == {"config_overrides": overrides, "use_sim_time": False}
    elsewhere = [*overrides, "ros.reward_server.in_graph=false"]
    assert not [s for s in graph_nodes(load_config(elsewhere), elsewhere) if s.kind == "reward_server"]
    oracle = ["reward=oracle_sparse"]
    assert not [s for s in graph_nodes(load_config(oracle), oracle) if s.kind == "reward_server"]


def test_the_franka_adapter_maps_its_drivers_topics_and_frames():
    overrides = ["robot=franka"]
    config = load_config(overrides)
    specs = graph_nodes(config, overrides)
    assert [s.kind for s in specs] == ["aggregator", "safety", "actor"]
    assert all(s.remappings["tcp/pose"] == "/franka_robot_state_broadcaster/current_pose" for s in specs)
    assert all(s.parameters["base_frame"] == "fr3_link0" for s in specs if s.kind != "aggregator")
    assert config.ros.aggregator.twist_from_pose and config.robot.command_interface == "pose"


def test_the_ur_adapter_commands_twists_and_has_no_twin():
    overrides = ["robot=ur5e"]
    config = load_config(overrides)
    specs = graph_nodes(config, overrides)
    assert config.robot.command_interface == "twist" and not config.ros.twin
    assert all(s.remappings["command/twist"] == "/servo_node/delta_twist_cmds" for s in specs)
    with pytest.raises(ConfigError, match="the twin simulates a Franka Panda"):
        load_config([*overrides, "ros.twin=true"])


def test_a_real_robot_graph_has_no_twin_runs_on_wall_time_and_remaps_the_drivers_topics():
    overrides = ["ros.twin=false", "ros.teleop=true", "ros.remappings=['tcp/pose:=/franka/ee_pose']"]
    specs = graph_nodes(load_config(overrides), overrides)
    assert [s.kind for s in specs] == ["aggregator", "safety", "actor", "teleop"]
    assert not any(s.parameters["use_sim_time"] for s in specs)
    assert all(s.remappings == {"tcp/pose": "/franka/ee_pose"} for s in specs)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_files_compile_and_start_the_described_graph(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    compile(tree, str(path), "exec")
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert "graph_launch_description" in imported, f"{path.name} does not build on the graph description"
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions


def test_there_are_both_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {"sim.launch.py", "real.launch.py"}


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not installable here")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_files_expand_to_nodes_where_launch_ros_exists(path):  # pragma: no cover - workstations only
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    context.launch_configurations["overrides"] = "task=reach"
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    nodes = opaque.execute(context)
    assert nodes and all(n.node_executable.startswith("robot-rl-") for n in nodes)
