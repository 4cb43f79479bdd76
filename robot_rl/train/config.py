"""TrainConfig: the learner loop's budget and schedule (the algorithm's own knobs live in the
agent's config)."""

from __future__ import annotations

from dataclasses import dataclass

from robot_rl.sim.config import ConfigError, check_choice

TRAIN_MODES = ("sync", "async")
TRANSPORTS = ("inprocess", "ros")


@dataclass
class TrainConfig:
    env_steps: int = 30_000  # online environment steps (BC: gradient steps on the demos)
    # scripted-expert demonstrations put in the demo buffer (SERL's 20; on reach, 10 demos are 51
    # transitions and left SAC at ~4% eval success after 4k steps, 20 at 36-50%)
    demo_episodes: int = 20
    # a folder of recorded demo bags (`robot-rl demos`, the ROS episode recorder): its successful
    # episodes are the demos instead of demo_episodes scripted-expert ones
    demo_bags: str = ""
    demo_fraction: float = 0.5  # share of every batch drawn from the demos (RLPD: 0.5)
    learning_starts: int = 500  # online steps before the first update
    buffer_capacity: int = 200_000  # observations in the online buffer
    ram_frame_budget_gb: float = 4.0  # online-buffer frames kept in RAM; the rest memory-mapped
    eval_every: int = 2_500  # env steps between evaluations
    eval_episodes: int = 20
    checkpoint_every: int = 5_000
    log_every: int = 250
    # "sync": one thread alternates acting and learning (tests, exact resume); "async": an actor
    # thread collects at its own rate while the learner trains, weights pushed every
    # weight_push_every updates. Every update by default: on pick_cube the asynchronous loop with
    # weights every 50 updates and the actor up to 50 steps ahead reached 0.50 and 0.0 ground-truth
    # success at 30k env steps (two seeds), and 0.70 and 0.60 with both at 1 (README, "Actor
    # lag"). A remote learner pushing a pixel policy (1.4 MB) to a robot may push less often.
    mode: str = "sync"
    weight_push_every: int = 1
    # The furthest (env steps) an actor may run ahead of the learner: the in-process actor thread,
    # and ROS actors stepping a twin in lockstep, wait beyond it. Without a limit a lockstep graph
    # outran the learner fivefold, which then trained on the data of ever older policies. A robot's
    # actor runs in real time and never waits.
    max_actor_lead: int = 1
    # "inprocess": the learner steps its own twin; "ros": it trains on the steps that the actors of
    # the ROS graph publish (ros_nodes/learner_node.py) and pushes weights to them over DDS.
    transport: str = "inprocess"
    device: str = "cpu"
    video_episodes: int = 2  # of the final evaluation

    def validate(self, key: str = "train") -> None:
        check_choice(self.mode, TRAIN_MODES, f"{key}.mode")
        check_choice(self.transport, TRANSPORTS, f"{key}.transport")
        for name in (
            "env_steps",
            "eval_every",
            "eval_episodes",
            "checkpoint_every",
            "log_every",
            "weight_push_every",
            "max_actor_lead",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("demo_episodes", "learning_starts", "video_episodes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{key}.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.demo_fraction <= 1.0:
            raise ConfigError(f"{key}.demo_fraction: must be in [0, 1], got {self.demo_fraction}")
        if self.buffer_capacity < 1000:
            raise ConfigError(f"{key}.buffer_capacity: must be >= 1000, got {self.buffer_capacity}")
        if self.ram_frame_budget_gb < 0:
            raise ConfigError(f"{key}.ram_frame_budget_gb: must be >= 0, got {self.ram_frame_budget_gb}")
