"""State-based pick_cube (or --task peg_insert): ground-truth success vs env steps for RLPD, plain
SAC and BC, RLPD trained on a learned success classifier's reward instead of the oracle's, with
simulated interventions (HIL-SERL, RLIF), and through the ROS 2 graph.

    .venv/bin/python bench/pick_cube_learning.py        # ~40 min on 2 cores
    .venv/bin/python bench/pick_cube_learning.py --env-steps 10000 --seeds 0 1   # shorter / more seeds
    .venv/bin/python bench/pick_cube_learning.py --methods rlpd rlpd_classifier --seeds 0 1 \
        --out bench/results/pick_cube_classifier_reward.json      # learned reward vs oracle
    .venv/bin/python bench/pick_cube_learning.py --methods rlpd_classifier_hil --seeds 0 \
        --reference bench/results/pick_cube_classifier_reward.json --out bench/results/pick_cube_hil.json
    .venv/bin/python bench/pick_cube_learning.py --task peg_insert --methods rlpd_classifier \
        rlpd_classifier_hil --classifier-episodes 300 --out bench/results/peg_insert_hil.json

What is measured
  Three methods on the twin's pick_cube, state-based (sim=state: proprio + wrench + the cube's
  pose, privileged; SAC ignores the wrench there, configs/task_agent/pick_cube_sac.yaml), sparse
  ground-truth success reward (an oracle), CPU:
    rlpd     SAC in the RLPD recipe (configs/agent/sac.yaml) with --demos scripted demos mixed
             50/50 into every batch;
    rlpd_10_critics
             the same with RLPD's 10-critic ensemble (random 2 for the target min) instead of 2;
    sac      the same agent and budget without demos (demo_episodes=0: online data only);
    bc       behaviour cloning on the same demos (train.env_steps counts its gradient steps, so
             it is one point, not a curve: its final success rate);
    rlpd_classifier_hil
             rlpd_classifier with the simulated human (hil=hil_serl, robot_rl/hil/): it takes over
             when the policy deviates from the scripted expert or is stuck (reaction delay, noise,
             at most 40 intervened steps an episode; on peg_insert a steadier hand, see
             human_overrides), and its corrections are demos too (HIL-SERL);
    rlif     RLIF: the simulated human as above, and the reward is only -1 where it steps in
             (hil=rlif, reward=intervention): no task reward at all;
    rlpd_async
             RLPD in the in-process asynchronous loop (train.mode=async): an actor thread steps the
             twin with its own policy copy, up to train.max_actor_lead steps ahead, and gets the
             learner's weights every train.weight_push_every updates, as the ROS graph's actor
             does; the arm that separates the policy's lag from ROS in rlpd_ros's gap to rlpd;
    rlpd_ros RLPD as above, trained through the ROS 2 graph (train.transport=ros): the twin in
             lockstep, aggregator, safety and actor as `robot-rl graph` in a child process, the
             learner taking the actor's steps over DDS and pushing weights back; in a loopback-only
             network namespace (unshare, as the ROS tests run), so no DDS traffic leaves the machine;
    rlpd_classifier
             RLPD as above, rewarded only by a success classifier (reward=classifier): 1 where it
             detects success, which also ends the episode (HIL-SERL); the oracle's success only
             scores. The classifier is trained first by `robot-rl train-reward` on --classifier-
             episodes labelled episodes (expert, noisy, partial, near-miss, random; ~3 positive frames each)
             from the front and wrist cameras at 128x128 (on peg_insert the wrist camera only, see
             classifier_cameras); the twin renders them for the reward
             model while the policy stays state-based (agent.cameras=[]). Its training episodes
             also record how often the classifier declared success vs the truth, so a hacked
             reward would show. With --classifier-ensemble K (both classifier arms), K classifiers,
             each on its own labelled episodes, and the reward their min-ensemble: success only
             where all K call it (runs in <method>_ensembleK_s<seed>).
  Each run is `robot-rl train` in its own process with one torch thread (the two online runs
  share the two cores), in outputs/bench/<task>/<method>_s<seed>; running the bench again
  resumes unfinished runs from their checkpoints. Success rate = deterministic policy on
  --eval-episodes held-out seeds every --eval-every env steps (the learner's own evaluation).
  Targets: RLPD >= 90% success within 30k env steps with 10 demos; with simulated interventions,
  >= 90% in fewer env steps than without (rlpd_classifier_hil vs rlpd_classifier); RLIF >= 80%.
  The human-in-the-loop arms also record the share of training steps the human drove, which
  should fall as the policy improves (curve.intervention_rate, dotted in the plot).

Writes bench/results/<task>_learning.json (or --out) and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
from loopback import loopback_namespace_command  # bench/loopback.py, beside this script

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_SUCCESS, TARGET_STEPS = 0.9, 30_000
LEARNED_REWARD_TARGET = 0.8  # the reward issue's target for RLPD on the classifier's reward only
TASKS = ("pick_cube", "peg_insert")
CLASSIFIER_METHODS = ("rlpd_classifier", "rlpd_classifier_hil")
METHODS = (
    "rlpd",
    "rlpd_10_critics",
    "sac",
    "bc",
    "rlpd_classifier",
    "rlpd_classifier_hil",
    "rlif",
    "rlpd_async",
    "rlpd_ros",
)
RLIF_TARGET = 0.8


def run_commands(method: str, seed: int, args: argparse.Namespace, run_dir: Path) -> list[list[str]]:
    """The robot-rl commands of one run, in order."""
    cli = [sys.executable, "-m", "robot_rl.cli"]
    if method in CLASSIFIER_METHODS:
        # each arm trains its classifier(s) (same seed, same labelled episodes: the same classifier),
        # so two arms running at once never write one file
        cameras = ["sim=state", "sim.cameras=[front,wrist]"]
        reward_cameras = f"[{','.join(classifier_cameras(args.task))}]"
        commands, checkpoints = [], []
        for member, classifier in enumerate(classifier_dirs(run_dir, args)):
            checkpoints.append(f"{classifier}/classifier.safetensors")
            if not (classifier / "classifier.safetensors").exists():  # a resumed bench keeps the reward it trained on
                labels = [f"task={args.task}", *cameras, f"seed={seed + 1000 * member}", f"run_dir={classifier}"]
                train_reward = ["train-reward", *labels, "reward=classifier", f"reward.cameras={reward_cameras}"]
                commands.append([*cli, *train_reward, f"episodes={args.classifier_episodes}"])
        if len(checkpoints) == 1:
            reward = ["reward=classifier", f"reward.cameras={reward_cameras}", f"reward.checkpoint={checkpoints[0]}"]
        else:
            reward = ["reward=ensemble", f"reward.member.cameras={reward_cameras}"]
            reward += [f"reward.checkpoints=[{','.join(checkpoints)}]"]
        train = [*cli, "train", f"task={args.task}", *cameras, f"seed={seed}", "agent.cameras=[]", *reward]
        hil = ["hil=hil_serl", *human_overrides(args.task)] if method == "rlpd_classifier_hil" else []
        return [*commands, [*train, *common_overrides(run_dir, args), *method_overrides("rlpd", args), *hil]]
    oracle = [f"task={args.task}", "sim=state", "reward=oracle_sparse", f"seed={seed}"]
    if method == "rlif":
        rlif = [f"task={args.task}", "sim=state", "hil=rlif", *human_overrides(args.task), f"seed={seed}"]
        return [[*cli, "train", *rlif, *common_overrides(run_dir, args), *method_overrides("rlpd", args)]]
    if method == "rlpd_ros":
        train = [*cli, "train", *oracle, *common_overrides(run_dir, args), *method_overrides("rlpd", args)]
        return [loopback_namespace_command([*train, "train.transport=ros"])]
    return [[*cli, "train", *oracle, *common_overrides(run_dir, args), *method_overrides(method, args)]]


def classifier_dirs(run_dir: Path, args: argparse.Namespace) -> list[Path]:
    """Where a classifier arm's classifiers are trained: member k on the labelled episodes of seed
    + 1000 k (member 0 on the run's own seed, as a single classifier is)."""
    return [
        run_dir.with_name(run_dir.name + "_reward" + (f"_{k}" if k else "")) for k in range(args.classifier_ensemble)
    ]


def run_name(method: str, seed: int, args: argparse.Namespace) -> str:
    """A run's folder in outputs/bench/<task>/: an ensemble's runs apart from a single classifier's."""
    ensemble = (
        f"_ensemble{args.classifier_ensemble}" if method in CLASSIFIER_METHODS and args.classifier_ensemble > 1 else ""
    )
    return f"{method}{ensemble}_s{seed}"


def classifier_cameras(task: str) -> list[str]:
    """The success classifier's cameras; peg_insert's reads the wrist camera only. The front camera looks at the fixture
    from the far side, so a peg pushed down on the robot's side of it is hidden behind it exactly
    as an inserted one is; a classifier on both cameras (held-out ROC-AUC 0.99997, 300 labelled
    episodes) paid for that, and RLPD with simulated interventions learned it (10 of the last 15
    classifier successes at 17.5k env steps beside the fixture). The wrist camera sees the hole."""
    return ["wrist"] if task == "peg_insert" else ["front", "wrist"]


def human_overrides(task: str) -> list[str]:
    """The simulated human's steadier hand on peg_insert: its default noise, 0.1 of full scale
    (3 mm a step), is twice the hole's clearance, and the scripted expert with that noise inserted
    the peg in 0 of 20 episodes (20 of 20 at 0.02, in 40 steps on average instead of 25)."""
    return ["hil.human.noise_std=0.02"] if task == "peg_insert" else []


def common_overrides(run_dir: Path, args: argparse.Namespace) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"train.eval_every={args.eval_every}",
        f"train.eval_episodes={args.eval_episodes}",
        "train.checkpoint_every=5000",
        "train.buffer_capacity=50000",
        "train.video_episodes=0",
    ]


def method_overrides(method: str, args: argparse.Namespace) -> list[str]:
    return {
        "rlpd": ["agent=sac", f"train.env_steps={args.env_steps}", f"train.demo_episodes={args.demos}"],
        "rlpd_10_critics": [
            "agent=sac",
            "agent.num_critics=10",
            f"train.env_steps={args.env_steps}",
            f"train.demo_episodes={args.demos}",
        ],
        "rlpd_async": [
            "agent=sac",
            "train.mode=async",
            f"train.env_steps={args.env_steps}",
            f"train.demo_episodes={args.demos}",
        ],
        "sac": ["agent=sac", f"train.env_steps={args.env_steps}", "train.demo_episodes=0"],
        "bc": ["agent=bc", f"train.env_steps={args.bc_steps}", f"train.demo_episodes={args.demos}"],
    }[method]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="pick_cube", choices=TASKS)
    parser.add_argument("--env-steps", type=int, default=TARGET_STEPS)
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--bc-steps", type=int, default=5000)
    parser.add_argument("--eval-every", type=int, default=2500)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=["rlpd", "sac", "bc"], choices=METHODS)
    parser.add_argument("--classifier-episodes", type=int, default=60, help="rlpd_classifier: labelled episodes")
    parser.add_argument(
        "--classifier-ensemble",
        type=int,
        default=1,
        help="rlpd_classifier*: classifiers, each on its own labelled episodes (> 1: their min-ensemble)",
    )
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--out", type=Path, help="default: bench/results/<task>_learning.json")
    parser.add_argument(
        "--reference",
        type=Path,
        help="an earlier results JSON whose runs of other methods (same seeds) join this one's summary and targets, "
        "marked with where they come from: learning curves count env steps, which another day does not change",
    )
    args = parser.parse_args()
    if args.classifier_ensemble < 1:
        parser.error(f"--classifier-ensemble must be >= 1, got {args.classifier_ensemble}")
    args.out = args.out or RESULTS / f"{args.task}_learning.json"

    # ROS_*: for rlpd_ros, whose DDS discovery stays on its namespace's loopback
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": "42",
    }
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    run_dirs = {job: ROOT / "outputs" / "bench" / args.task / run_name(*job, args) for job in jobs}
    pending, running, wall = list(jobs), {}, {}
    while pending or running:
        while pending and len(running) < args.parallel:
            job = pending.pop(0)
            run_dirs[job].mkdir(parents=True, exist_ok=True)
            log = open(run_dirs[job] / "bench_stdout.log", "a")  # noqa: SIM115 (closed with the process)
            running[job] = (
                subprocess.Popen(
                    ["bash", "-c", " && ".join(shlex.join(c) for c in run_commands(*job, args, run_dirs[job]))],
                    env=env,
                    stdout=log,
                    stderr=log,
                ),
                log,
            )
            wall[job] = time.perf_counter()
            print(f"started {job[0]} seed {job[1]} -> {run_dirs[job]}", flush=True)
        time.sleep(5)
        for job, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[job]
                wall[job] = time.perf_counter() - wall[job]
                if process.returncode != 0:
                    sys.exit(f"{job[0]} seed {job[1]} failed (rc {process.returncode}): see {log.name}")
                print(f"finished {job[0]} seed {job[1]} in {wall[job] / 60:.1f} min", flush=True)

    runs = {}
    for method, seed in jobs:
        curve = json.loads((run_dirs[method, seed] / "curve.json").read_text())
        runs[f"{method}_s{seed}"] = {"method": method, "seed": seed, "wall_s": round(wall[method, seed], 1), **curve}
        if method in CLASSIFIER_METHODS:
            reports = [
                json.loads((d / "reward_report.json").read_text())
                for d in classifier_dirs(run_dirs[method, seed], args)
            ]
            runs[f"{method}_s{seed}"]["classifier" if len(reports) == 1 else "classifiers"] = (
                reports[0] if len(reports) == 1 else reports
            )
    methods = list(args.methods)
    if args.reference:
        for name, run in json.loads(args.reference.read_text())["runs"].items():
            if run["method"] not in args.methods and run["seed"] in args.seeds:
                runs[name] = {**run, "reference": str(args.reference)}
                methods += [] if run["method"] in methods else [run["method"]]
    summary = {}
    for method in methods:
        finals = [r["success_rate"][-1] for r in runs.values() if r["method"] == method]
        summary[method] = {"final_success_mean": sum(finals) / len(finals), "final_success_per_seed": finals}
        if method != "bc":
            # first evaluation at which the success rate reached a target, per seed
            for target in (TARGET_SUCCESS, LEARNED_REWARD_TARGET, RLIF_TARGET):
                summary[method][f"env_steps_to_{target:.0%}"] = [
                    next((s for s, v in zip(r["env_steps"], r["success_rate"], strict=True) if v >= target), None)
                    for r in runs.values()
                    if r["method"] == method
                ]
    # Both targets read "reaches X within the budget", per seed: the first evaluation at X counts
    # (the final evaluations are reported beside it, in the summary).
    targets = {}
    for method, target, what in (
        ("rlpd", TARGET_SUCCESS, "RLPD (oracle reward)"),
        ("rlpd_async", TARGET_SUCCESS, "RLPD in the asynchronous loop (oracle reward)"),
        ("rlpd_ros", TARGET_SUCCESS, "RLPD through the ROS 2 graph (oracle reward)"),
        ("rlpd_classifier", LEARNED_REWARD_TARGET, "RLPD on the classifier reward only"),
        ("rlif", RLIF_TARGET, "RLIF (intervention reward only)"),
    ):
        if method in summary:
            hits = summary[method][f"env_steps_to_{target:.0%}"]
            key = f"{what} >= {target:.0%} success within {args.env_steps} env steps, every seed"
            targets[key] = all(s is not None and s <= args.env_steps for s in hits)
    if "rlpd_classifier" in summary and "rlpd_classifier_hil" in summary:
        without = summary["rlpd_classifier"][f"env_steps_to_{TARGET_SUCCESS:.0%}"]
        with_human = summary["rlpd_classifier_hil"][f"env_steps_to_{TARGET_SUCCESS:.0%}"]
        key = f"with simulated interventions: >= {TARGET_SUCCESS:.0%} in fewer env steps than without, every seed"
        targets[key] = all(h is not None and (w is None or h < w) for h, w in zip(with_human, without, strict=True))
    result = {
        "benchmark": "pick_cube_learning",
        "task": f"{args.task}, state-based policy (privileged object pose), sparse success reward, CPU",
        "rewards": {
            "rlpd, rlpd_10_critics, rlpd_async, rlpd_ros, sac, bc": "ground-truth success from the twin (an oracle)",
            "rlpd_classifier, rlpd_classifier_hil": (
                "a success classifier on the "
                if args.classifier_ensemble == 1
                else f"the min-ensemble (reward=ensemble) of {args.classifier_ensemble} success classifiers, each "
                "trained on its own labelled episodes, on the "
            )
            + f"{' + '.join(classifier_cameras(args.task))} camera(s) (128x128), trained by train-reward",
            "rlif": "-1 where the simulated human steps in, 0 otherwise (no task reward)",
        },
        "demos": args.demos,
        "env_steps": args.env_steps,
        "bc_gradient_steps": args.bc_steps,
        "eval_episodes": args.eval_episodes,
        "seeds": args.seeds,
        "targets_met": targets,
        "summary": summary,
        "runs": runs,
        "command": "python " + " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({"targets_met": targets, "summary": summary}, indent=2))


def plot(result: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {
        "rlpd": "tab:blue",
        "rlpd_10_critics": "tab:cyan",
        "sac": "tab:orange",
        "bc": "tab:green",
        "rlpd_classifier": "tab:purple",
        "rlpd_ros": "tab:red",
        "rlpd_async": "tab:pink",
        "rlpd_classifier_hil": "tab:brown",
        "rlif": "tab:olive",
    }
    demos = result["demos"]
    labels = {
        "rlpd": f"RLPD ({demos} demos), oracle reward",
        "sac": "SAC, no demos, oracle reward",
        "bc": f"BC ({demos} demos)",
        "rlpd_classifier": f"RLPD ({demos} demos), classifier reward",
        "rlpd_10_critics": f"RLPD ({demos} demos), 10 critics, oracle reward",
        "rlpd_ros": f"RLPD ({demos} demos) through the ROS 2 graph, oracle reward",
        "rlpd_async": f"RLPD ({demos} demos), asynchronous actor thread, oracle reward",
        "rlpd_classifier_hil": f"RLPD ({demos} demos), classifier reward, simulated interventions",
        "rlif": f"RLIF ({demos} demos), intervention reward only",
    }
    for name, run in result["runs"].items():
        method = run["method"]
        first_seed = name.endswith(f"s{result['seeds'][0]}")
        label = labels[method] if first_seed else None
        if method == "bc":
            ax.axhline(run["success_rate"][-1], color=colors[method], linestyle="--", label=label)
            continue
        ax.plot(run["env_steps"], run["success_rate"], marker="o", color=colors[method], label=label, alpha=0.8)
        rates = [(s, v) for s, v in zip(run["env_steps"], run.get("intervention_rate", []), strict=False) if v]
        if rates:
            label = "  share of training steps the human drove" if first_seed else None
            ax.plot(*zip(*rates, strict=True), color=colors[method], linestyle=":", label=label)
        if method == "rlpd_classifier":
            # on the same training episodes: the classifier's success calls vs the truth (a gap = a hacked reward)
            for key, style, text in (
                ("train_success_reward_model", ":", "  classifier's success calls (training episodes)"),
                ("train_success_oracle", "--", "  true success (same training episodes)"),
            ):
                points = [(s, v) for s, v in zip(run["env_steps"], run[key], strict=True) if v is not None]
                if points:
                    label = text if first_seed else None
                    ax.plot(*zip(*points, strict=True), color=colors[method], linestyle=style, label=label)
    ax.axhline(TARGET_SUCCESS, color="grey", linestyle=":", label="oracle-reward target")
    if any(run["method"] == "rlif" for run in result["runs"].values()):
        ax.axhline(RLIF_TARGET, color=colors["rlif"], linestyle="-.", linewidth=0.8, label="RLIF target")
    ax.set(xlabel="env steps", ylabel="success rate (markers: ground-truth evaluation)", ylim=(-0.02, 1.02))
    ax.set_title(f"{result['task'].split(',')[0]}, state-based policy (CPU)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
