"""RewardServer: batched results equal direct score() calls, batching under load, max_batch, failures
confined to their batch, requests of another layout served apart, close(), config checks.

Timing-free: a model that blocks its first call until released lets a test queue requests while
the worker is busy, so which requests share a batch is decided by the test, not by the scheduler.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.server import RewardServer, RewardServerConfig
from robot_rl.rewards.simple import ContactForcePenalty
from robot_rl.sim.config import ConfigError
from robot_rl.spec import STATE_DIMS

POISON = -1000.0  # a state entry that makes StateSum raise
TIMEOUT = 5.0  # seconds; only reached when a test fails


class StateSum(RewardModel):
    """reward = state.sum(-1) + mean pixel of each camera. Records each call's batch size and grad
    mode; while `release` is clear, calls block in forward() (after setting `entered`)."""

    def __init__(self, cameras: tuple[str, ...] = ()):
        super().__init__()
        self.cameras = cameras
        self.calls: list[int] = []
        self.grad_enabled: list[bool] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.release.set()

    def forward(self, inputs: RewardInput) -> RewardOutput:
        self.calls.append(len(inputs))
        self.grad_enabled.append(torch.is_grad_enabled())
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        if bool((inputs.state == POISON).any()):
            raise ValueError("poisoned observation")
        reward = inputs.state.sum(-1)
        for cam in sorted(inputs.images):
            reward = reward + inputs.images[cam].float().mean(dim=(1, 2, 3))
        return RewardOutput(reward=reward, success_prob=torch.sigmoid(reward), success=reward > 0)


def request(n: int, seed: int, cameras: dict[str, int] | None = None, poison: bool = False) -> RewardInput:
    """n observations: state [n, 4], and a uint8 [n, size, size, 3] frame per camera."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(n, 4, generator=g)
    if poison:
        state[-1, 0] = POISON
    images = {
        cam: torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
        for cam, size in (cameras or {}).items()
    }
    return RewardInput(state=state, images=images, action=torch.randn(n, 7, generator=g))


def hold_worker(server: RewardServer, model: StateSum, first: RewardInput):
    """Submits `first` and returns its future once the model is scoring it (and blocked): requests
    submitted until model.release.set() queue up behind it."""
    model.release.clear()
    future = server.submit(first)
    assert model.entered.wait(TIMEOUT)
    return future


def assert_same_output(got: RewardOutput, want: RewardOutput) -> None:
    for name in ("reward", "success_prob", "uncertainty", "success"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.equal(a, b), name


def test_batched_results_equal_direct_score_per_request():
    model = StateSum(cameras=("front",))
    requests = [request(n, seed, {"front": 8}) for seed, n in enumerate([1, 3, 1, 2, 5])]
    with RewardServer(model, RewardServerConfig(max_batch=16, max_wait_s=0.0)) as server:
        first = hold_worker(server, model, requests[0])
        futures = [first] + [server.submit(r) for r in requests[1:]]
        model.release.set()
        outputs = [f.result(TIMEOUT) for f in futures]
    assert model.calls == [1, 11]  # the four queued requests shared one call
    assert model.grad_enabled == [False, False]
    for inputs, got in zip(requests, outputs, strict=True):
        assert_same_output(got, model.score(inputs))


def test_real_model_contact_force_penalty_matches_direct_score():
    model = ContactForcePenalty()
    g = torch.Generator().manual_seed(0)
    # wrenches of tens of N: some above the 20 N threshold, some below
    requests = [RewardInput(torch.randn(n, sum(STATE_DIMS.values()), generator=g) * 30, {}) for n in (1, 4, 2, 1)]
    with RewardServer(model, RewardServerConfig(max_batch=8)) as server:
        outputs = [f.result(TIMEOUT) for f in [server.submit(r) for r in requests]]
    for inputs, got in zip(requests, outputs, strict=True):
        assert_same_output(got, model.score(inputs))
    assert (torch.cat([out.reward for out in outputs]) < 0).any()  # not a vacuous all-zero comparison


def test_concurrent_submits_each_get_their_own_results():
    model = StateSum()
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    errors: list[Exception] = []

    def actor(index: int) -> None:
        try:
            start.wait(TIMEOUT)
            for step in range(per_thread):
                inputs = request(1 + step % 3, seed=1000 * index + step)
                want = inputs.state.sum(-1)
                assert torch.equal(server.submit(inputs).result(TIMEOUT).reward, want)
        except Exception as error:  # AssertionError included: reported in the test thread below
            errors.append(error)

    with RewardServer(model, RewardServerConfig(max_batch=16, max_wait_s=0.001)) as server:
        workers = [threading.Thread(target=actor, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(TIMEOUT)
        stats = server.stats()
    assert not errors, errors[0]
    assert stats.observations == threads * sum(1 + step % 3 for step in range(per_thread))
    assert sum(model.calls) == stats.observations and max(model.calls) <= 16


@pytest.mark.parametrize(("max_batch", "calls"), [(64, [1, 20]), (8, [1, 8, 8, 4])])
def test_queued_concurrent_requests_share_calls_up_to_max_batch(max_batch, calls):
    model = StateSum()
    with RewardServer(model, RewardServerConfig(max_batch=max_batch, max_wait_s=0.0)) as server:
        first = hold_worker(server, model, request(1, seed=0))
        futures: list = [None] * 20

        def actor(index: int) -> None:
            futures[index] = server.submit(request(1, seed=index + 1))

        submitters = [threading.Thread(target=actor, args=(i,)) for i in range(20)]
        for t in submitters:
            t.start()
        for t in submitters:
            t.join(TIMEOUT)
        model.release.set()
        for f in [first, *futures]:
            f.result(TIMEOUT)
        stats = server.stats()
    assert model.calls == calls
    assert (stats.batches, stats.observations, stats.mean_batch_size) == (len(calls), 21, 21 / len(calls))
    assert stats.batch_sizes == {size: calls.count(size) for size in calls}


def test_full_batch_is_scored_without_waiting_for_max_wait():
    model = StateSum()
    with RewardServer(model, RewardServerConfig(max_batch=3, max_wait_s=60.0)) as server:
        a, b = server.submit(request(1, seed=0)), server.submit(request(2, seed=1))
        a.result(TIMEOUT), b.result(TIMEOUT)  # raises TimeoutError if the server waited for max_wait_s
    assert model.calls == [3]


def test_model_exception_fails_only_its_batch_and_the_server_keeps_serving():
    model = StateSum()
    with RewardServer(model, RewardServerConfig(max_batch=8, max_wait_s=0.0)) as server:
        before = hold_worker(server, model, request(1, seed=0))
        bad, batch_mate = server.submit(request(2, seed=1, poison=True)), server.submit(request(1, seed=2))
        model.release.set()
        assert before.result(TIMEOUT).reward.shape == (1,)
        for future in (bad, batch_mate):
            with pytest.raises(ValueError, match="poisoned"):
                future.result(TIMEOUT)
        after = request(3, seed=3)
        assert torch.equal(server.submit(after).result(TIMEOUT).reward, after.state.sum(-1))
        stats = server.stats()
    assert model.calls == [1, 3, 3]
    assert (stats.batches, stats.failed_batches) == (3, 1)


def test_requests_of_another_layout_are_scored_apart_and_fail_alone():
    model = StateSum(cameras=("front",))
    with RewardServer(model, RewardServerConfig(max_batch=8, max_wait_s=0.0)) as server:
        first = hold_worker(server, model, request(1, seed=0, cameras={"front": 8}))
        wrist_only = server.submit(request(1, seed=1, cameras={"wrist": 8}))
        small = [server.submit(request(1, seed=s, cameras={"front": 8})) for s in (2, 3)]
        large = server.submit(request(2, seed=4, cameras={"front": 16}))
        model.release.set()
        with pytest.raises(KeyError, match="front"):  # the model's own message: it reads 'front'
            wrist_only.result(TIMEOUT)
        for f in [first, *small, large]:
            f.result(TIMEOUT)
        stats = server.stats()
    # wrist alone (score() rejects it before forward()), the two 8x8 requests together, then the 16x16 one
    assert model.calls == [1, 2, 2]
    assert (stats.batches, stats.failed_batches, stats.observations) == (4, 1, 6)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        (RewardInput(torch.zeros(4), {}), ValueError, r"state must be \[B, S\]"),
        (RewardInput(torch.zeros(0, 4), {}), ValueError, "1..max_batch=8 observations, this one 0"),
        (RewardInput(torch.zeros(9, 4), {}), ValueError, "1..max_batch=8 observations, this one 9"),
        (RewardInput(torch.zeros(2, 4), {}, action=torch.zeros(3, 7)), ValueError, "action has shape"),
        (
            RewardInput(torch.zeros(1, 4), {"front": torch.zeros(8, 8, 3, dtype=torch.uint8)}),
            ValueError,
            "front.*shape \\(8, 8, 3\\)",
        ),
        (
            RewardInput(torch.zeros(1, 4), {"front": torch.zeros(1, 8, 8, dtype=torch.uint8)}),
            ValueError,
            r"must be \[B, H, W, C\]",
        ),
        (RewardInput([[0.0]], {}), TypeError, "state must be a torch.Tensor"),
        ({"state": torch.zeros(1, 4)}, TypeError, "takes a RewardInput"),
    ],
)
def test_malformed_requests_raise_in_the_caller(inputs, error, match):
    with RewardServer(StateSum(), RewardServerConfig(max_batch=8)) as server, pytest.raises(error, match=match):
        server.submit(inputs)


def test_close_fails_pending_requests_and_refuses_new_ones():
    server = RewardServer(StateSum(), RewardServerConfig(max_batch=64, max_wait_s=60.0))
    pending = server.submit(request(1, seed=0))  # waits up to 60 s for company
    server.close()
    with pytest.raises(RuntimeError, match="closed before this request was scored"):
        pending.result(TIMEOUT)
    with pytest.raises(RuntimeError, match="accepts no more requests"):
        server.submit(request(1, seed=1))
    server.close()  # closing twice is harmless


def test_close_lets_the_batch_being_scored_finish():
    model = StateSum()
    server = RewardServer(model, RewardServerConfig(max_batch=8, max_wait_s=0.0))
    scoring = hold_worker(server, model, request(1, seed=0))
    queued = server.submit(request(1, seed=1))
    closer = threading.Thread(target=server.close)
    closer.start()
    while not server.closed:  # close() marks the server closed before it waits for the worker
        time.sleep(0.001)
    model.release.set()
    closer.join(TIMEOUT)
    assert scoring.result(TIMEOUT).reward.shape == (1,)
    with pytest.raises(RuntimeError, match="closed"):
        queued.result(TIMEOUT)
    assert model.calls == [1]


def test_cancelled_request_is_not_scored():
    model = StateSum()
    with RewardServer(model, RewardServerConfig(max_batch=8, max_wait_s=0.0)) as server:
        first = hold_worker(server, model, request(1, seed=0))
        cancelled, kept = server.submit(request(2, seed=1)), server.submit(request(1, seed=2))
        assert cancelled.cancel()
        model.release.set()
        first.result(TIMEOUT), kept.result(TIMEOUT)
        assert server.stats().observations == 2
    assert model.calls == [1, 1]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"max_batch": 0}, "reward_server.max_batch"),
        ({"max_batch": 2.5}, "reward_server.max_batch"),
        ({"max_wait_s": -0.001}, "reward_server.max_wait_s"),
        ({"max_wait_s": float("nan")}, "reward_server.max_wait_s"),
    ],
)
def test_config_validation_names_the_key(overrides, key):
    config = RewardServerConfig(**overrides)
    with pytest.raises(ConfigError, match=key):
        config.validate()
    with pytest.raises(ConfigError, match=key):
        RewardServer(StateSum(), config)
    RewardServerConfig().validate()
