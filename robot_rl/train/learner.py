"""Training on the simulation twin: RLPD (SAC, demos mixed 50/50 into every batch) or BC.

The loop, top to bottom (sync mode):
  1. demos: the scripted expert's successful episodes fill the demo buffer (once per run dir);
  2. every env step: act (the policy, random before `learning_starts`), step, store;
  3. after `learning_starts`: `utd_ratio` mixed batches -> agent.update (critic on each, actor
     and temperature once);
  4. every `eval_every` steps: deterministic evaluation on held-out seeds, ground-truth success;
  5. every `checkpoint_every` steps: agent + RNGs + buffers to the run dir, so that running the
     same command again resumes from the same step with the same buffer contents.
In async mode an actor thread steps the env with its own copy of the policy while the learner
trains; the learner pushes the actor's weights every `weight_push_every` updates.

The reward is the task's ground truth from the twin (`reward=oracle_*`, labelled an oracle in every
log) or a reward model's (`reward=clip`, ...): the model scores each observation after an action,
and where it decides success (a thresholded classifier) that ends the episode, as in HIL-SERL.
Ground-truth success then only scores: evaluation and the `*_oracle` charts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from tqdm import tqdm  # noqa: E402

from robot_rl.agents import make_agent  # noqa: E402
from robot_rl.config import Config, ConfigError, agent_config_of_run  # noqa: E402
from robot_rl.data.checkpoint import load_agent_state, load_checkpoint, save_checkpoint  # noqa: E402
from robot_rl.data.demos import add_episodes, check_demo_episodes, collect_expert_demos, read_demo_bags  # noqa: E402
from robot_rl.data.replay import ReplayBuffer, mixed_batch  # noqa: E402
from robot_rl.hil.simulated_human import EpisodeStats, SimulatedHuman  # noqa: E402
from robot_rl.rewards import check_reward_cameras, make_reward_model  # noqa: E402
from robot_rl.rewards.base import RewardInput, RewardModel  # noqa: E402
from robot_rl.rewards.preference.model import load_preference_reward, make_labeller, save_preference_reward  # noqa: E402
from robot_rl.robot.messages import StepMessage  # noqa: E402
from robot_rl.rollout import AgentPolicy, make_env, reward_label, run_episodes, summarize  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402
from robot_rl.spec import ACTION_DIM, flatten_state  # noqa: E402
from robot_rl.train.reward_updates import OnlinePreferenceUpdates, relabel_buffer  # noqa: E402

log = logging.getLogger(__name__)

RUN_SPEC_FILE = "run_spec.json"
EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never reuse a training seed
TRAIN_WINDOW = 20  # training episodes in the logged training success rates
ONLINE_REWARD_FILE = "reward_model.safetensors"  # the reward model as online updates left it


@dataclass
class Curve:
    """Evaluation results over training, for the learning-curve plot and the report."""

    env_steps: list[int] = field(default_factory=list)
    success_rate: list[float] = field(default_factory=list)
    mean_length: list[float] = field(default_factory=list)
    # Over the last TRAIN_WINDOW training episodes at each evaluation (None before the first ends):
    # how often the episode ended in true success; with a reward model that decides success, how
    # often it declared success; and the mean return under the training reward. A reward the policy
    # hacks shows as a declared success rate or a return that climbs while the true success does not.
    train_success_oracle: list[float | None] = field(default_factory=list)
    train_success_reward_model: list[float | None] = field(default_factory=list)
    train_return: list[float | None] = field(default_factory=list)
    # With the simulated human (hil.mode): the share of the last TRAIN_WINDOW training episodes'
    # steps that it drove, which falls as the policy needs it less.
    intervention_rate: list[float | None] = field(default_factory=list)


def camera_sizes(config: Config) -> dict[str, tuple[int, int]]:
    """The rendered cameras' image (height, width): what the buffers store."""
    return {n: (config.sim.camera_rigs[n].height, config.sim.camera_rigs[n].width) for n in config.sim.cameras}


def policy_camera_sizes(config: Config) -> dict[str, tuple[int, int]]:
    """The cameras the agent sees (agent.cameras, default all rendered ones), as agents take them."""
    sizes = camera_sizes(config)
    seen = getattr(config.agent, "cameras", None)
    if seen is None:
        return sizes
    unknown = sorted(set(seen) - set(sizes))
    if unknown:
        raise ConfigError(f"agent.cameras: {unknown} not among the rendered sim.cameras={config.sim.cameras}")
    return {cam: sizes[cam] for cam in seen}


def run_spec(config: Config, state_dim: int) -> dict:
    """What a checkpoint must agree with to be loaded: the observation/action spec and the agent."""
    # lists, as the spec's JSON file reads them back
    cameras = {name: list(size) for name, size in policy_camera_sizes(config).items()}
    return {
        "task": config.task.name,
        "state_dim": state_dim,
        "cameras": cameras,
        "action_dim": ACTION_DIM,
        "controlled_actions": config.task.controlled_actions(),
        "privileged_state": config.sim.privileged_state,
        "agent": config.agent.name,
    }


def check_run_spec(expected: dict, found: dict, where: Path) -> None:
    differences = [
        f"{key}: checkpoint has {found.get(key)!r}, this config has {expected[key]!r}"
        for key in expected
        if found.get(key) != expected[key]
    ]
    if differences:
        raise ValueError(f"checkpoint in {where} does not match this config:\n  " + "\n  ".join(differences))


def load_trained_agent(config: Config, run_dir: Path, env):
    """The agent of a training run's latest checkpoint, after checking that the run's observation
    and action spec match `config` (a mismatch fails naming what differs)."""
    spec_file = run_dir / RUN_SPEC_FILE
    if not spec_file.exists():
        raise FileNotFoundError(f"{run_dir} is not a training run directory ({RUN_SPEC_FILE} is missing)")
    config = replace(config, agent=agent_config_of_run(run_dir))  # the networks (and cameras) it trained
    obs, _ = env.reset(seed=config.seed)
    state_dim = len(flatten_state(obs["state"]))
    check_run_spec(run_spec(config, state_dim), json.loads(spec_file.read_text()), run_dir)
    controlled = config.task.controlled_actions()
    agent = make_agent(
        config.agent, state_dim, ACTION_DIM, policy_camera_sizes(config), config.train.device, controlled
    )
    step, state = load_agent_state(run_dir)
    agent.load_state_dict(state)
    return agent, step


class Trainer:
    def __init__(self, config: Config, run_dir: Path):
        self.config, self.run_dir = config, run_dir
        c = config.train
        self.device = torch.device(c.device)
        self.reward_model = make_reward_model(config.reward, self.device)  # None: the twin's oracle
        if self.reward_model is not None:
            check_reward_cameras(self.reward_model, config.sim.cameras)
        self.env = make_env(config, learned_reward=self.reward_model is not None)
        # Evaluation has an env of its own: resetting the training env mid-episode would splice
        # an evaluation episode into the training one (and race the actor thread in async mode).
        self.eval_env = make_env(config)
        obs, _ = self.env.reset(seed=config.seed)
        self.state_dim = len(flatten_state(obs["state"]))
        self.cameras = policy_camera_sizes(config)
        self.controlled = config.task.controlled_actions()
        self.agent = make_agent(config.agent, self.state_dim, ACTION_DIM, self.cameras, self.device, self.controlled)
        self.spec = run_spec(config, self.state_dim)
        self.curve = Curve()
        self.train_stats: tuple[float | None, float | None, float | None] = (None, None, None)  # see _periodic
        self.reward_decides_success = False  # set by _score: whether the reward model makes success decisions
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        self.writer.add_text("reward", reward_label(config))

        spec_file = run_dir / RUN_SPEC_FILE
        checkpoint = load_checkpoint(run_dir) if spec_file.exists() else None
        if checkpoint is not None:
            check_run_spec(self.spec, json.loads(spec_file.read_text()), run_dir)
            self.agent.load_state_dict(checkpoint.agent_state)
            self.step, self.rng = checkpoint.step, checkpoint.rng
            self.online, self.demos = checkpoint.buffers["online"], checkpoint.buffers["demos"]
            curve_file = run_dir / "curve.json"
            if curve_file.exists():
                self.curve = Curve(**json.loads(curve_file.read_text()))
            log.info("resumed %s at env step %d (%d online transitions)", run_dir, self.step, len(self.online))
        else:
            # Both buffers live in the run directory and a checkpoint flushes them in place: only
            # the frames added since the last one are written (a copy of the demo buffer's frames,
            # intervention room included, took ~2 GB a checkpoint with cameras).
            online_dir, demos_dir = run_dir / "buffers" / "online", run_dir / "buffers" / "demos"
            if spec_file.exists() and (run_dir / "buffers").exists():
                # This run stopped before its first checkpoint: with no agent to resume, its
                # buffers (at most checkpoint_every steps) cannot continue it. Start over.
                log.warning("%s stopped before its first checkpoint: starting over, its buffers discarded", run_dir)
                shutil.rmtree(run_dir / "buffers")
            spec_file.write_text(json.dumps(self.spec, indent=2))
            self.step, self.rng = 0, np.random.default_rng(config.seed)
            self.online = ReplayBuffer(
                c.buffer_capacity,
                self.state_dim,
                ACTION_DIM,
                camera_sizes(config),
                ram_frame_budget_bytes=int(c.ram_frame_budget_gb * 2**30),
                storage_dir=online_dir,
            )
            recorded = self._recorded_demos() if c.demo_bags else []
            expected = c.demo_episodes * (config.task.max_episode_steps + 1)
            demo_slots = max(1000, sum(len(ep) + 1 for ep in recorded) or expected)
            # room for every step a person may drive: the simulated human, or an operator over ROS
            if config.hil.mode != "off" or c.transport == "ros":
                budget = config.hil.human.budget_total
                demo_slots += min(c.env_steps, budget if budget is not None else c.env_steps)
            self.demos = ReplayBuffer(
                demo_slots,
                self.state_dim,
                ACTION_DIM,
                camera_sizes(config),
                ram_frame_budget_bytes=2**40,  # every demo frame in RAM: they are in every batch
                storage_dir=demos_dir,
            )
            if recorded:
                add_episodes(self.demos, recorded)
                log.info("demos: %d recorded episodes from %s, %d steps", len(recorded), c.demo_bags, len(self.demos))
            elif c.demo_episodes:
                collected = collect_expert_demos(self.env, self.demos, c.demo_episodes, seed=config.seed + 500_000)
                log.info("demos: %d expert episodes, %d transitions", len(collected.seeds), collected.transitions)
            if self.reward_model is not None and len(self.demos):
                # recorded with the oracle's (or the operator's) reward: the learner sees the model's
                relabel_buffer(self.demos, self.reward_model, self._score, self.device)
        # hil.mode: the simulated operator watching the training env (its expert reads the twin's state)
        self.human = SimulatedHuman(config.hil.human, make_expert(self.env)) if config.hil.mode != "off" else None
        self.intervention_stats: list[EpisodeStats] = []
        self.reward_updates: OnlinePreferenceUpdates | None = None
        if getattr(config.reward, "online_every", 0):
            self._start_reward_updates(resumed=checkpoint is not None)

    def _recorded_demos(self) -> list:
        """train.demo_bags: the successful episodes recorded there, checked against this run's buffers."""
        folder = self.config.train.demo_bags
        try:
            episodes = read_demo_bags(folder)
            check_demo_episodes(episodes, self.state_dim, camera_sizes(self.config), f"train.demo_bags={folder}")
        except ValueError as error:
            raise ConfigError(str(error)) from error
        if not episodes:
            raise ConfigError(f"train.demo_bags: no successful episode in {folder} (record some with robot-rl demos)")
        return episodes

    def _start_reward_updates(self, resumed: bool) -> None:
        """reward.online_every > 0: the reward keeps learning from new labels (reward_updates.py).
        A resumed run goes on with the reward model its last checkpoint saved (labels included) and
        relabels every stored transition with it: a relabelling cut short by the crash is redone."""
        if self.config.train.mode != "sync":
            raise ConfigError("reward.online_every: online reward updates need train.mode=sync")
        saved = self.run_dir / ONLINE_REWARD_FILE
        if resumed and saved.exists():
            self.reward_model, _ = load_preference_reward(saved, self.config.reward, self.device)
            for buffer in (self.online, self.demos):
                relabel_buffer(buffer, self.reward_model, self._score, self.device)
        self.reward_updates = OnlinePreferenceUpdates(
            self.reward_model,
            make_labeller(self.config.reward),
            [self.online, self.demos],
            self._score,
            self.device,
            seed=self.config.seed + self.step,
        )

    # --- the loop ---------------------------------------------------------------------------
    def train(self, actors: Actors | None = None) -> dict:
        """`actors`: where the steps come from in async mode (default: a thread on the in-process twin)."""
        if self.config.agent.name == "bc":
            self._train_bc()
        elif self.config.train.mode == "async" or actors is not None:
            self._train_async(actors)
        else:
            self._train_sync()
        return self._finish()

    def _sample(self) -> list:
        c, a = self.config.train, self.config.agent
        return [
            mixed_batch(self.online, self.demos, a.batch_size, c.demo_fraction, self.rng, self.cameras).to(self.device)
            for _ in range(a.utd_ratio)
        ]

    def _fit_state_normalization_once(self) -> None:
        """Before the first update: standardise the agent's state input on the states the buffers
        hold (demos and the random `learning_starts` steps). Later updates, and runs resumed from a
        checkpoint, keep those statistics (they are part of the agent's state)."""
        if self.agent.update_step > 0:
            return
        states = [b.state[np.flatnonzero(b.has_next)] for b in (self.online, self.demos)]
        states = np.concatenate(states)
        if len(states) > 1:
            self.agent.fit_state_normalization(states)
            log.info("state normalisation fitted on %d states", len(states))

    def _update(self) -> dict[str, float]:
        self._fit_state_normalization_once()
        try:
            return self.agent.update(self._sample())
        except FloatingPointError as error:
            # The agent checks losses before any optimiser step, so the weights are still finite:
            # checkpoint them for a post-mortem and stop rather than train on.
            self._checkpoint()
            raise FloatingPointError(
                f"training stopped at env step {self.step}: {error}. The last finite weights and the "
                f"buffers are in {self.run_dir}; check the reward scale and the learning rates."
            ) from error

    def _train_sync(self) -> None:
        c = self.config.train
        env, rng, human = self.env, self.rng, self.human
        obs, info = env.reset(seed=self._episode_seed())
        if human is not None:
            human.reset()
        episode_return, episode_ends = 0.0, []
        start, t0, updates = self.step, time.perf_counter(), 0
        bar = tqdm(range(self.step, c.env_steps), initial=self.step, total=c.env_steps, desc="train", unit="step")
        for self.step in bar:
            if self.reward_updates is not None:
                self._poll_reward_updates()
            if self.step < c.learning_starts:
                action = rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)
            else:
                action = self.agent.act(obs)
            # The simulated human sees the policy's action and may take over: the step stores the
            # action executed, the human's while it intervenes (what the robot did).
            decision = human.step(obs, info, action) if human is not None else None
            intervened = decision is not None and decision.intervening
            policy_action = action
            if intervened:
                action = decision.action
            next_obs, reward, terminated, truncated, info = env.step(action)
            if self.reward_model is not None:
                reward, terminated = self._learned_reward(next_obs, action)
            self.online.add(obs, action, reward, next_obs, terminated, truncated)
            counted = reward  # what the episode's return counts for this step
            if decision is not None and decision.started and self.config.hil.penalises_interventions:
                # RLIF: the penalty belongs to the policy's action that made the human step in, not
                # to the human's correction (stored above, unpenalised). A transition of its own,
                # terminal: the policy's trajectory ends where the human takes over.
                penalty, _ = self._learned_reward(next_obs, policy_action, intervention_start=True)
                self.online.add(obs, policy_action, penalty, next_obs, True, False)
                counted = penalty  # the penalty, with the step's task reward once
            if intervened:  # the human's corrections go to the intervention (demo) buffer too
                self.demos.add(obs, action, reward, next_obs, terminated, truncated)
            if self.reward_updates is not None:
                self.reward_updates.record(next_obs, info, terminated or truncated)
            obs, episode_return = next_obs, episode_return + counted
            if terminated or truncated:
                episode_ends.append((bool(info["success"]), bool(terminated), episode_return))
                self.writer.add_scalar("charts/episode_return", episode_return, self.step)
                if human is not None:
                    self._log_interventions(human.episode_stats)
                    human.reset()
                obs, info = env.reset(seed=self._episode_seed())
                episode_return = 0.0

            metrics = {}
            if self.step >= c.learning_starts:
                metrics = self._update()
                updates += 1
            self._periodic(self.step + 1, metrics, episode_ends, start, t0, updates, bar)
        self.step = c.env_steps

    def _train_async(self, actors: Actors | None = None) -> None:
        """Actors step their envs with their own policy copies; the learner trains on what arrives
        and pushes them the policy every `weight_push_every` updates. Default: one actor thread on
        the in-process twin; ros_nodes/learner_node.py brings actors over ROS instead."""
        c = self.config.train
        actors = actors or ThreadActor(self)
        start, t0, updates, episode_ends = self.step, time.perf_counter(), 0, []
        returns: dict[str, float] = {}
        bar = tqdm(initial=self.step, total=c.env_steps, desc="train (async)", unit="step")
        try:
            actors.start(_cpu(self.agent.actor_state_dict()))
            while self.step < c.env_steps:
                step = actors.get()
                if step is None:
                    break
                self.online.add(step.obs, step.action, step.reward, step.next_obs, step.terminated, step.truncated)
                counted = step.reward
                if step.intervention_start and self.config.hil.penalises_interventions:
                    # RLIF, as in _train_sync: the penalty is the policy's action's, terminal
                    if not math.isfinite(step.start_reward):
                        raise RuntimeError(
                            f"{step.episode} step {step.step}: an intervention started but no reward "
                            "scored the policy's action (hil.mode penalises interventions: the reward "
                            "server scores them)"
                        )
                    self.online.add(step.obs, step.policy_action, step.start_reward, step.next_obs, True, False)
                    counted = step.start_reward
                if step.intervened:  # the operator's corrections go to the intervention (demo) buffer too
                    self.demos.add(step.obs, step.action, step.reward, step.next_obs, step.terminated, step.truncated)
                returns[step.episode] = returns.get(step.episode, 0.0) + counted
                if step.terminated or step.truncated:
                    episode_ends.append((bool(step.success), bool(step.terminated), returns.pop(step.episode)))
                metrics = {}
                # One update (utd_ratio critic steps) per executed step from the same step on as
                # in sync mode: the update-to-data ratio is the configured one however fast the
                # actors run.
                if self.step >= c.learning_starts:
                    metrics = self._update()
                    updates += 1
                    if updates % c.weight_push_every == 0:
                        actors.push_weights(_cpu(self.agent.actor_state_dict()), updates)
                self.step += 1
                bar.update(1)
                self._periodic(self.step, metrics, episode_ends, start, t0, updates, bar)
        finally:
            actors.close()

    def _train_bc(self) -> None:
        """BC: gradient steps on demo batches only; `env_steps` counts them."""
        c = self.config.train
        start, t0 = self.step, time.perf_counter()
        bar = tqdm(range(self.step, c.env_steps), initial=self.step, total=c.env_steps, desc="train BC", unit="update")
        self._fit_state_normalization_once()
        for self.step in bar:
            batch = self.demos.sample(self.config.agent.batch_size, self.rng, self.cameras)
            metrics = self.agent.update(batch.to(self.device))
            self._periodic(self.step + 1, metrics, [], start, t0, self.step + 1 - start, bar)
        self.step = c.env_steps

    def _learned_reward(
        self, next_obs: dict, action: np.ndarray, intervention_start: bool = False
    ) -> tuple[float, bool]:
        """The reward model's reward for the observation an action led to, and whether its success
        decision ends the episode (when the task ends episodes on success). `intervention_start`:
        the human took over after the policy proposed this action (RLIF's penalty)."""
        inputs = RewardInput.from_observation(
            next_obs, self.reward_model.cameras, action, self.device, intervention_start
        )
        reward, terminated = self._score(self.reward_model, inputs)
        return float(reward[0]), bool(terminated[0])

    def _log_interventions(self, episode: EpisodeStats) -> None:
        self.intervention_stats.append(episode)
        self.writer.add_scalar("hil/intervention_rate", episode.intervention_rate, self.step)
        self.writer.add_scalar("hil/interventions_per_episode", episode.interventions, self.step)
        if episode.interventions:
            self.writer.add_scalar("hil/mean_intervention_length", episode.mean_intervention_length, self.step)

    def _poll_reward_updates(self) -> None:
        improved = self.reward_updates.poll(self.step)
        if improved is not None:
            self.reward_model = improved  # from this step on; stored transitions follow in the background
            log.info("env step %d: reward model updated (%d labels)", self.step, len(improved.dataset))

    @torch.no_grad()
    def _score(self, model: RewardModel, inputs: RewardInput) -> tuple[np.ndarray, np.ndarray]:
        """A reward model's rewards and episode ends for a batch of observations."""
        out = model.score(inputs)
        self.reward_decides_success = out.success is not None  # else its "declared success" means nothing
        success = out.success.cpu().numpy() if out.success is not None else np.zeros(len(inputs), bool)
        return out.reward.cpu().numpy(), success & self.config.task.terminate_on_success

    # --- bookkeeping ------------------------------------------------------------------------
    def _episode_seed(self) -> int:
        return int(self.rng.integers(EVAL_SEED_OFFSET))

    def _periodic(self, step, metrics, episode_ends, start, t0, updates, bar) -> None:
        """Logging, evaluation and checkpoints on their schedules. episode_ends: per finished
        training episode, (ended in true success, the reward model declared success, return)."""
        c = self.config.train
        log_now, eval_now = step % c.log_every == 0, step % c.eval_every == 0 or step == c.env_steps
        if episode_ends and (log_now or eval_now):
            oracle, model, mean_return = np.asarray(episode_ends[-TRAIN_WINDOW:], dtype=float).mean(axis=0)
            declared = float(model) if self.reward_model is not None and self.reward_decides_success else None
            self.train_stats = (float(oracle), declared, float(mean_return))
        if log_now:
            elapsed = time.perf_counter() - t0
            for name, value in metrics.items():
                self.writer.add_scalar(name, value, step)
            self.writer.add_scalar("env/steps_per_s", (step - start) / elapsed, step)
            self.writer.add_scalar("learner/updates_per_s", updates / elapsed, step)
            oracle, model, _ = self.train_stats
            if oracle is not None:
                self.writer.add_scalar("charts/train_success_rate_oracle", oracle, step)
                bar.set_postfix(train_success=f"{oracle:.2f}", eval_success=self._last_eval())
            if model is not None:
                self.writer.add_scalar("charts/train_success_rate_reward_model", model, step)
            for name, value in (self.reward_updates.last_stats if self.reward_updates else {}).items():
                self.writer.add_scalar(name, value, step)
        if eval_now:
            self._evaluate(step)
            bar.set_postfix(eval_success=self._last_eval())
        if step % c.checkpoint_every == 0:
            self._checkpoint(step)

    def _last_eval(self) -> str:
        return f"{self.curve.success_rate[-1]:.2f}" if self.curve.success_rate else "-"

    def _evaluate(self, step: int, video_path: Path | None = None, video_episodes: int = 0) -> dict:
        results = run_episodes(
            self.eval_env,
            AgentPolicy(self.agent, deterministic=True),
            self.config.train.eval_episodes,
            seed=EVAL_SEED_OFFSET + self.config.seed * 10_000,
            video_path=video_path,
            video_episodes=video_episodes,
            progress=False,
        )
        summary = summarize(results)
        if not self.curve.env_steps or self.curve.env_steps[-1] != step:
            self.curve.env_steps.append(step)
            self.curve.success_rate.append(summary["success_rate"])
            self.curve.mean_length.append(summary["mean_episode_length"])
            self.curve.train_success_oracle.append(self.train_stats[0])
            self.curve.train_success_reward_model.append(self.train_stats[1])
            self.curve.train_return.append(self.train_stats[2])
            recent = self.intervention_stats[-TRAIN_WINDOW:]
            steps = sum(episode.steps for episode in recent)
            rate = sum(episode.intervened_steps for episode in recent) / steps if steps else None
            self.curve.intervention_rate.append(rate if self.human is not None else None)
        self.writer.add_scalar("eval/success_rate", summary["success_rate"], step)
        self.writer.add_scalar("eval/mean_episode_length", summary["mean_episode_length"], step)
        (self.run_dir / "curve.json").write_text(json.dumps(self.curve.__dict__))
        return summary

    def _checkpoint(self, step: int | None = None) -> None:
        if self.reward_updates is not None:  # the labels are the expensive part: never lose them
            save_preference_reward(self.reward_model, self.run_dir / ONLINE_REWARD_FILE, with_dataset=True)
        save_checkpoint(
            self.run_dir,
            self.step if step is None else step,
            self.agent.state_dict(),
            self.rng,
            {"online": self.online, "demos": self.demos},
        )

    def _finish(self) -> dict:
        if self.reward_updates is not None:
            self.reward_updates.close()
        self._checkpoint(self.config.train.env_steps)
        final = self._evaluate(self.config.train.env_steps, self.run_dir / "eval.mp4", self.config.train.video_episodes)
        plot_curve(
            self.curve, self.run_dir / "learning_curve.png", f"{self.config.agent.name} on {self.config.task.name}"
        )
        self.writer.close()
        return {"final_eval": final, "curve": self.curve.__dict__}


class Actors(Protocol):
    """Where async training's steps come from and its weights go."""

    def start(self, actor_state: dict[str, torch.Tensor]) -> None: ...

    def get(self) -> StepMessage | None:
        """The next executed step, waiting for it; None when no more will come."""

    def push_weights(self, actor_state: dict[str, torch.Tensor], version: int) -> None: ...

    def close(self) -> None: ...


class ThreadActor:
    """One actor thread on the trainer's in-process twin, with its own CPU copy of the policy."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        c = trainer.config
        self.agent = make_agent(c.agent, trainer.state_dim, ACTION_DIM, trainer.cameras, "cpu", trainer.controlled)
        self.steps: queue.Queue = queue.Queue(maxsize=c.train.max_actor_lead)
        self.weights_lock, self.new_weights = threading.Lock(), None
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="actor", daemon=True)

    def start(self, actor_state: dict[str, torch.Tensor]) -> None:
        self.agent.load_actor_state_dict(actor_state)
        self.thread.start()

    def _run(self) -> None:
        t, c = self.trainer, self.trainer.config.train
        try:
            env, rng = t.env, np.random.default_rng(t.rng.integers(2**63))
            obs, _ = env.reset(seed=t._episode_seed())
            episode, episode_step = 0, 0
            for step in range(t.step, c.env_steps):
                if self.stop.is_set():
                    return
                with self.weights_lock:
                    if self.new_weights is not None:
                        self.agent.load_actor_state_dict(self.new_weights)
                        self.new_weights = None
                if step < c.learning_starts:
                    action = rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)
                else:
                    action = self.agent.act(obs)
                next_obs, reward, terminated, truncated, info = env.step(action)
                if t.reward_model is not None:
                    reward, terminated = t._learned_reward(next_obs, action)
                self.steps.put(
                    StepMessage(
                        episode=f"episode_{episode:06d}",
                        step=episode_step,
                        stamp_ns=0,
                        obs=obs,
                        action=action,
                        policy_action=action,
                        intervened=False,
                        reward=float(reward),
                        next_obs=next_obs,
                        terminated=bool(terminated),
                        truncated=bool(truncated),
                        success=bool(info["success"]),
                    )
                )
                obs, episode_step = next_obs, episode_step + 1
                if terminated or truncated:
                    episode, episode_step = episode + 1, 0
                    obs, _ = env.reset(seed=t._episode_seed())
        except BaseException as error:  # surfaced in the learner thread
            self.error = error
        finally:
            self.steps.put(None)

    def get(self) -> StepMessage | None:
        step = self.steps.get()
        if step is None and self.error is not None:
            raise RuntimeError("the actor thread failed") from self.error
        return step

    def push_weights(self, actor_state: dict[str, torch.Tensor], version: int) -> None:
        with self.weights_lock:
            self.new_weights = actor_state

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():  # the actor may wait on a full queue
            with contextlib.suppress(queue.Empty):
                self.steps.get_nowait()
            self.thread.join(timeout=0.05)


def plot_curve(curve: Curve, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve.env_steps, curve.success_rate, marker="o", label="evaluation (ground truth)")
    if any(v is not None for v in curve.train_success_reward_model):
        # A learned reward: its success calls beside the truth on the same training episodes.
        for values, label, style in (
            (curve.train_success_oracle, "training episodes: true success", "--"),
            (curve.train_success_reward_model, "training episodes: reward model's success", ":"),
        ):
            points = [(s, v) for s, v in zip(curve.env_steps, values, strict=False) if v is not None]
            if points:
                ax.plot(*zip(*points, strict=True), linestyle=style, label=label)
        ax.legend(fontsize=8)
    rates = [(s, v) for s, v in zip(curve.env_steps, curve.intervention_rate, strict=False) if v is not None]
    if rates:  # the simulated human: the share of training steps it drove, on the same 0..1 scale
        ax.plot(*zip(*rates, strict=True), linestyle="-.", color="tab:red", label="training steps intervened")
        ax.legend(fontsize=8)
    ax.set(xlabel="env steps", ylabel="success rate", ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
