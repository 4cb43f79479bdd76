"""The reward server's batching core: many actors' observations in, one reward-model call per batch.

Several actors (robots or sim twins) each send an observation per control tick and need its reward
back, while the model sits on one GPU where a batch of 32 costs about what one observation does.
`RewardServer.submit()` queues a request (1..max_batch observations) from any thread and returns a
Future; one worker thread gathers pending requests until they hold `max_batch` observations or the
oldest has waited `max_wait_s`, scores them in one `model.score()` call, and hands each request its
slice of the output. No transport here: a ROS 2 node (or the learner) wraps it.

Requests are batched only with requests of the same layout (cameras, shapes, dtypes, devices,
optional fields present); the others wait for the next batch, so a stray request cannot break a
batch it could not be concatenated into. An exception from the model fails only that batch's
futures, and the server keeps serving.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field, fields, replace

import torch

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.sim.config import ConfigError


@dataclass
class RewardServerConfig:
    # Observations per model call. Bounds the GPU memory of a call; a request may not exceed it.
    max_batch: int = 64
    # How long the oldest pending request waits for others to join its batch. At 10 Hz control a
    # couple of milliseconds is free, and it lets the requests of one tick share a call.
    max_wait_s: float = 0.002

    def validate(self, key: str = "reward_server") -> None:
        if not (isinstance(self.max_batch, int) and self.max_batch >= 1):
            raise ConfigError(f"{key}.max_batch: must be an integer >= 1, got {self.max_batch!r}")
        if not self.max_wait_s >= 0:  # also rejects NaN
            raise ConfigError(f"{key}.max_wait_s: must be >= 0 seconds, got {self.max_wait_s!r}")


@dataclass
class ServerStats:
    batches: int = 0  # model calls
    failed_batches: int = 0  # calls that raised (their requests' futures hold the exception)
    observations: int = 0
    batch_sizes: Counter[int] = field(default_factory=Counter)  # observations per call -> number of calls

    @property
    def mean_batch_size(self) -> float:
        return self.observations / self.batches if self.batches else 0.0


@dataclass
class _Request:
    inputs: RewardInput
    future: Future
    layout: tuple  # requests are concatenated only with requests of the same layout
    submitted: float  # time.monotonic()


class RewardServer:
    """Batches `submit()`ted requests from any number of threads into `model.score()` calls made by
    one worker thread. Use as a context manager, or call close(). Callers must not modify a
    request's tensors until its future is done."""

    def __init__(self, model: RewardModel, config: RewardServerConfig | None = None):
        self.model = model
        self.config = config or RewardServerConfig()
        self.config.validate()
        self._pending: deque[_Request] = deque()
        self._pending_observations = 0
        self._closed = False
        self._stats = ServerStats()
        self._cond = threading.Condition()
        # daemon: a server someone forgot to close must not keep the process alive
        self._worker = threading.Thread(target=self._serve_forever, name="reward-server", daemon=True)
        self._worker.start()

    def submit(self, inputs: RewardInput) -> Future[RewardOutput]:
        """Queue 1..max_batch observations; the future resolves to their RewardOutput (or the model's
        exception). Bad shapes raise here, in the caller's thread."""
        layout = _check_request(inputs, self.config.max_batch)
        request = _Request(inputs, Future(), layout, time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError("RewardServer is closed: it accepts no more requests")
            self._pending.append(request)
            self._pending_observations += len(inputs)
            # The worker needs waking only to start a batch or to send a full one early; otherwise
            # it is already waiting for the oldest request's deadline, or busy scoring.
            if len(self._pending) == 1 or self._pending_observations >= self.config.max_batch:
                self._cond.notify()
        return request.future

    def stats(self) -> ServerStats:
        """A snapshot of what has been served so far."""
        with self._cond:
            return replace(self._stats, batch_sizes=Counter(self._stats.batch_sizes))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop serving: the batch being scored completes, every request still pending fails."""
        with self._cond:
            self._closed = True
            abandoned = list(self._pending)
            self._pending.clear()
            self._pending_observations = 0
            self._cond.notify()
        if threading.current_thread() is not self._worker:  # a future's callback may close the server
            self._worker.join()
        error = RuntimeError("RewardServer was closed before this request was scored")
        for request in abandoned:
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(error)

    def __enter__(self) -> RewardServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the worker thread ----------------------------------------------------------------------
    def _serve_forever(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:  # empty when every request taken had been cancelled
                self._score(batch)

    def _next_batch(self) -> list[_Request] | None:
        """Blocks until a batch is due; None once the server is closed."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            while not self._closed and self._pending_observations < self.config.max_batch:
                # the oldest request's deadline: it may have passed while the previous batch was scored
                left = self._pending[0].submitted + self.config.max_wait_s - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:
                return None
            return self._take_batch()

    def _take_batch(self) -> list[_Request]:
        """The oldest request and, in arrival order, those of its layout that fit in max_batch.
        The others stay pending, in order. Called with the lock held."""
        layout, size, batch, rest, full = self._pending[0].layout, 0, [], deque(), False
        for request in self._pending:
            n = len(request.inputs)
            if request.layout != layout or full:
                rest.append(request)
            elif size + n > self.config.max_batch:
                full = True  # later, smaller requests must not overtake this one
                rest.append(request)
            else:
                self._pending_observations -= n
                if request.future.set_running_or_notify_cancel():  # False: the caller cancelled it
                    batch.append(request)
                    size += n
        self._pending = rest
        return batch

    def _score(self, batch: list[_Request]) -> None:
        sizes = [len(request.inputs) for request in batch]
        try:
            with torch.no_grad():  # grad mode is per thread: the callers' setting does not reach here
                output = self.model.score(RewardInput.concatenate([request.inputs for request in batch]))
            parts = _split(output, sizes)
        except Exception as error:  # the model's failure belongs to this batch's requests, not the server
            with self._cond:
                self._count(sizes, failed=True)
            for request in batch:
                request.future.set_exception(error)
            return
        with self._cond:
            self._count(sizes, failed=False)
        for request, part in zip(batch, parts, strict=True):
            request.future.set_result(part)

    def _count(self, sizes: list[int], failed: bool) -> None:
        self._stats.batches += 1
        self._stats.failed_batches += failed
        self._stats.observations += sum(sizes)
        self._stats.batch_sizes[sum(sizes)] += 1


def _check_request(inputs: RewardInput, max_batch: int) -> tuple:
    """Raises on a request that cannot be batched; returns its layout (what must match to concatenate)."""
    if not isinstance(inputs, RewardInput):
        raise TypeError(f"RewardServer.submit takes a RewardInput, got {type(inputs).__name__}")
    tensors = {"state": inputs.state, "action": inputs.action, "intervention_start": inputs.intervention_start}
    tensors.update({f"images[{cam!r}]": images for cam, images in inputs.images.items()})
    for name, tensor in tensors.items():
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise TypeError(f"RewardInput.{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if inputs.state.ndim != 2:
        raise ValueError(f"RewardInput.state must be [B, S], got shape {tuple(inputs.state.shape)}")
    n = len(inputs)
    if not 1 <= n <= max_batch:
        raise ValueError(f"a request holds 1..max_batch={max_batch} observations, this one {n}")
    for name, tensor in tensors.items():
        if tensor is not None and (tensor.ndim == 0 or tensor.shape[0] != n):
            raise ValueError(f"RewardInput.{name} has shape {tuple(tensor.shape)}: not {n} rows, as state has")
    for cam, images in inputs.images.items():
        if images.ndim != 4:  # a batch of one is [1, H, W, C]: a bare frame would concatenate along H
            raise ValueError(f"RewardInput.images[{cam!r}] must be [B, H, W, C], got shape {tuple(images.shape)}")

    def describe(tensor: torch.Tensor | None) -> tuple | None:
        return None if tensor is None else (tuple(tensor.shape[1:]), tensor.dtype, tensor.device)

    return (
        describe(inputs.state),
        tuple(sorted((cam, describe(images)) for cam, images in inputs.images.items())),
        describe(inputs.action),
        describe(inputs.intervention_start),
    )


def _split(output: RewardOutput, sizes: list[int]) -> list[RewardOutput]:
    """Each request's rows of every RewardOutput field (None stays None)."""
    total = sum(sizes)
    for f in fields(output):
        value = getattr(output, f.name)
        if value is not None and (value.ndim == 0 or value.shape[0] != total):
            raise ValueError(f"the model returned {f.name} of shape {tuple(value.shape)} for {total} observations")
    columns = {
        f.name: [None] * len(sizes) if getattr(output, f.name) is None else getattr(output, f.name).split(sizes)
        for f in fields(output)
    }
    return [type(output)(**{name: parts[i] for name, parts in columns.items()}) for i in range(len(sizes))]
