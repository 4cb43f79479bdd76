"""Replay buffer of the RLPD/SAC learner: each camera frame stored once, as uint8, in RAM up to a
budget and memory-mapped on disk beyond it, and crash-safe in its storage directory.

Layout. A ring of `capacity` *slots*. A slot holds one observation (a frame per camera and the
flattened state) and the action, reward and `terminated` flag of the transition that starts there.
The transition at slot i goes from the observation in slot i to the one in slot i+1 (mod capacity)
and exists only while `has_next[i]` is set. An episode of T transitions fills T+1 consecutive
slots, obs_0 .. obs_T: every frame once, no copy of it as a next observation. Its last slot (the
final observation) never has `has_next`, so a sample never pairs an observation with the next
episode's first one. Writing a slot clears its own `has_next` (its observation is gone); the slot
before it is always the newest one, never an old transition, so eviction cannot leave a transition
whose frames were overwritten. `capacity` counts observations: a full ring holds
capacity - (episodes in it) transitions, e.g. 198k for 200k slots of 100-step episodes.

The state vector is stored per slot like the frames (not as state + next_state per transition):
the same index rule for everything, half the bytes, and next_state cannot disagree with the next
frames. Everything but the frames is small (138 B a slot for the spec's 26-D state and 7-D action)
and always in memory (memory-mapped files with a storage_dir, so that a crash keeps them too).

Tiers. Slots [0, ram_slots) keep their frames in RAM arrays (ram_slots from the RAM budget); the
rest in a memory-mapped .npy file per camera under `storage_dir`. Sampling gathers from both.

Crash safety (with a storage_dir). Every array lives in `storage_dir` as a .npy file (no pickles);
`buffer.json` holds the ring pointer and counters, replaced atomically by each flush. A flush
copies the RAM tier's new frames into the camera file (so the file holds every slot: disk use is
the whole ring even with a RAM tier), msyncs all files and writes buffer.json. `flush()` leaves a
complete snapshot; an automatic flush (before the write that would cross the reservation, every
`flush_every` slots) also *reserves* the next `flush_every` ring positions: buffer.json marks them
as lost, because the running process will overwrite them before it flushes again.
After a SIGKILL (or an OOM kill, or a crash of the process), `ReplayBuffer.open(storage_dir)` has
every transition stored before the last flush, bit for bit, except those in the reserved positions
(after an automatic flush of a full ring: the `flush_every` oldest slots, about to be evicted anyway);
it loses what was added after the last flush: at most `flush_every` slots. Since a flush msyncs
before it writes buffer.json, the same holds after a power loss or kernel crash.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from gymnasium import spaces

from robot_rl.data.batch import Batch
from robot_rl.spec import flatten_state

FORMAT_VERSION = 1
META_FILE = "buffer.json"
LOCK_FILE = "lock"
DEFAULT_RAM_FRAME_BUDGET = 4 * 2**30  # bytes
COPY_CHUNK = 2048  # slots per copy step when saving/loading, so no copy needs the whole ring in memory


class ReplayBuffer:
    """Transitions for off-policy learning; see the module docstring for the layout.

    One process adds and samples (a second process opening the same storage_dir is refused by a
    lock); relabel() may run on another thread of it (add, relabel and save take a mutex)."""

    def __init__(
        self,
        capacity: int,
        state_dim: int,
        action_dim: int,
        cameras: Mapping[str, tuple[int, int]] | None = None,
        ram_frame_budget_bytes: int = DEFAULT_RAM_FRAME_BUDGET,
        storage_dir: Path | str | None = None,
        flush_every: int = 1000,
    ):
        """capacity: observation slots. cameras: name -> (H, W) of uint8 [H, W, 3] frames.
        ram_frame_budget_bytes: RAM for frames; slots beyond it need storage_dir.
        flush_every: slots between automatic flushes (the crash-loss window), at most capacity // 4."""
        self._configure(
            capacity, state_dim, action_dim, cameras or {}, ram_frame_budget_bytes, storage_dir, flush_every
        )
        if self.storage_dir is None:
            self._bind({name: np.zeros(shape, dtype) for name, (dtype, shape) in self._index_layout().items()}, None)
        else:
            if (self.storage_dir / META_FILE).exists():
                raise FileExistsError(f"{self.storage_dir} already holds a replay buffer: use ReplayBuffer.open")
            self.storage_dir.mkdir(parents=True, exist_ok=True)
            self._lock()
            layout = {**self._index_layout(), **self._frame_layout()}
            arrays = {
                name: np.lib.format.open_memmap(self.storage_dir / f"{name}.npy", "w+", dtype, shape)
                for name, (dtype, shape) in layout.items()
            }
            self._bind(arrays, {cam: arrays[_frame_key(cam)] for cam in self.cameras}, load_ram_tier=False)
        self._ptr = 0  # next slot to write
        self._written = 0  # slots written since the buffer was created
        self._episode_open = False  # the newest slot is an unfinished episode's latest observation
        self._num_transitions = 0
        self._flushed_written = 0
        self._reserved_until = 0  # written count up to which buffer.json allows writes
        self._flush(reserve=self.flush_every)  # a storage_dir can be opened from the start

    # construction ---------------------------------------------------------------------------
    def _configure(self, capacity, state_dim, action_dim, cameras, ram_frame_budget_bytes, storage_dir, flush_every):
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2 slots, got {capacity}")
        for name in cameras:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"camera name {name!r} must be letters, digits, '_' or '-' (it names a file)")
        self.capacity = int(capacity)
        self.state_dim = int(state_dim)
        self.action_dim = int(action_dim)
        self.cameras = {name: (int(h), int(w)) for name, (h, w) in cameras.items()}
        self.ram_frame_budget_bytes = int(ram_frame_budget_bytes)
        self.storage_dir = Path(storage_dir) if storage_dir is not None else None
        self.flush_every = max(2, min(int(flush_every), self.capacity // 4))
        frame_bytes = self.frame_bytes_per_slot
        self.ram_slots = min(self.capacity, ram_frame_budget_bytes // frame_bytes) if frame_bytes else self.capacity
        if self.ram_slots < self.capacity and self.storage_dir is None:
            raise ValueError(
                f"{self.capacity} slots of frames need {self.capacity * frame_bytes / 1e9:.2f} GB but "
                f"ram_frame_budget_bytes={ram_frame_budget_bytes} holds {self.ram_slots} slots: "
                "give a storage_dir for the memory-mapped rest, or a larger budget"
            )
        self._lock_file = None
        self._mutex = threading.Lock()

    def _index_layout(self) -> dict[str, tuple[type, tuple[int, ...]]]:
        n = self.capacity
        return {
            "state": (np.float32, (n, self.state_dim)),
            "action": (np.float32, (n, self.action_dim)),
            "reward": (np.float32, (n,)),
            "terminated": (np.bool_, (n,)),
            "has_next": (np.bool_, (n,)),
        }

    def _frame_layout(self) -> dict[str, tuple[type, tuple[int, ...]]]:
        return {_frame_key(cam): (np.uint8, (self.capacity, h, w, 3)) for cam, (h, w) in self.cameras.items()}

    def _bind(self, index: dict[str, np.ndarray], frame_files: dict[str, np.ndarray] | None, load_ram_tier=False):
        self.state, self.action, self.reward = index["state"], index["action"], index["reward"]
        self.terminated, self.has_next = index["terminated"], index["has_next"]
        self._files = frame_files or {}
        self._ram: dict[str, np.ndarray] = {}
        self._disk: dict[str, np.ndarray] = {}
        for cam, (h, w) in self.cameras.items():
            if frame_files is None:
                self._ram[cam] = np.zeros((self.ram_slots, h, w, 3), np.uint8)
                continue
            # The RAM tier is a copy of the file's first slots (the file keeps them for crash safety).
            head = frame_files[cam][: self.ram_slots]
            self._ram[cam] = np.array(head) if load_ram_tier else np.zeros(head.shape, np.uint8)
            self._disk[cam] = frame_files[cam][self.ram_slots :]

    def _lock(self) -> None:
        # flock dies with its process (even on SIGKILL), so a restart after a crash is never locked out.
        self._lock_file = open(self.storage_dir / LOCK_FILE, "w")  # held until close()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"{self.storage_dir} is in use by another replay buffer (another process?)") from None

    @classmethod
    def from_spaces(
        cls, observation_space: spaces.Dict, action_space: spaces.Box, capacity: int, **kwargs
    ) -> ReplayBuffer:
        """A buffer shaped for an env of the spec (robot_rl.spec.observation_space)."""
        state_dim = sum(int(np.prod(box.shape)) for box in observation_space["state"].values())
        images = observation_space.spaces.get("images", {})
        cameras = {name: box.shape[:2] for name, box in images.items()}
        return cls(capacity, state_dim, int(np.prod(action_space.shape)), cameras, **kwargs)

    # adding ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Transitions that can be sampled."""
        return self._num_transitions

    def add(self, obs: Mapping, action, reward: float, next_obs: Mapping, terminated: bool, truncated: bool) -> None:
        """One env step, observations in the spec format. `obs` continues the newest slot (stored
        once) when it equals the previous add's next_obs and that episode did not end; otherwise
        it starts a new episode segment (e.g. after a reset, or after resuming from a checkpoint)."""
        with self._mutex:
            self._add(obs, action, reward, next_obs, terminated, truncated)

    def _add(self, obs: Mapping, action, reward: float, next_obs: Mapping, terminated: bool, truncated: bool) -> None:
        state, images = self._checked_obs(obs)
        next_state, next_images = self._checked_obs(next_obs)
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != (self.action_dim,):
            raise ValueError(f"action must have {self.action_dim} values, got shape {action.shape}")
        if self.storage_dir is not None and self._written + 2 > self._reserved_until:
            self._flush(reserve=self.flush_every)  # buffer.json must allow the (at most 2) slots written next
        last = (self._ptr - 1) % self.capacity
        i = last if self._continues(last, state, images) else self._write_slot(state, images)
        self._write_slot(next_state, next_images)
        self.action[i], self.reward[i], self.terminated[i] = action, reward, terminated
        self.has_next[i] = True
        self._num_transitions += 1
        self._episode_open = not (terminated or truncated)

    def add_episode(
        self,
        observations: Sequence[Mapping],
        actions: Sequence,
        rewards: Sequence[float],
        terminated: bool,
        truncated: bool,
    ) -> None:
        """A recorded episode: observations obs_0 .. obs_T, T actions and rewards; `terminated` /
        `truncated` describe its last step (both False: the recording stopped mid-episode)."""
        if len(observations) != len(actions) + 1 or len(rewards) != len(actions):
            raise ValueError(
                f"an episode needs T+1 observations for T actions and rewards, got "
                f"{len(observations)}, {len(actions)}, {len(rewards)}"
            )
        self._episode_open = False  # a recorded episode never continues what came before it
        last = len(actions) - 1
        for t in range(len(actions)):
            end = t == last
            obs, next_obs = observations[t], observations[t + 1]
            self.add(obs, actions[t], rewards[t], next_obs, terminated and end, truncated and end)

    def _checked_obs(self, obs: Mapping) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        state = flatten_state(obs["state"])
        if state.shape != (self.state_dim,):
            raise ValueError(f"flattened state has {state.shape[0]} values, the buffer stores {self.state_dim}")
        images = obs.get("images", {})
        if set(images) != set(self.cameras):
            raise ValueError(f"observation has cameras {sorted(images)}, the buffer stores {sorted(self.cameras)}")
        for cam, frame in images.items():
            h, w = self.cameras[cam]
            if frame.dtype != np.uint8 or frame.shape != (h, w, 3):
                raise ValueError(f"camera {cam!r}: expected uint8 {(h, w, 3)}, got {frame.dtype} {frame.shape}")
        return state, images

    def _continues(self, last: int, state: np.ndarray, images: Mapping[str, np.ndarray]) -> bool:
        # Comparing the frames too costs microseconds and makes chaining never wrong.
        return (
            self._episode_open
            and np.array_equal(self.state[last], state)
            and all(np.array_equal(self._frame(cam, last), images[cam]) for cam in self.cameras)
        )

    def _write_slot(self, state: np.ndarray, images: Mapping[str, np.ndarray]) -> int:
        i = self._ptr
        if self.has_next[i]:  # evict the oldest transition: its observation is about to go
            self.has_next[i] = False
            self._num_transitions -= 1
        self.state[i] = state
        for cam, frame in images.items():
            if i < self.ram_slots:
                self._ram[cam][i] = frame
            else:
                self._disk[cam][i - self.ram_slots] = frame
        self._ptr = (i + 1) % self.capacity
        self._written += 1
        return i

    def _put_frames(self, cam: str, start: int, frames: np.ndarray) -> None:
        """Frames of consecutive slots from `start`, split between the tiers."""
        end, r = start + len(frames), self.ram_slots
        if start < r:
            self._ram[cam][start : min(end, r)] = frames[: min(end, r) - start]
        if end > r:
            self._disk[cam][max(start, r) - r : end - r] = frames[max(start, r) - start :]

    def _frame(self, cam: str, slot: int) -> np.ndarray:
        return self._ram[cam][slot] if slot < self.ram_slots else self._disk[cam][slot - self.ram_slots]

    # sampling -------------------------------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator, cameras: Sequence[str] | None = None) -> Batch:
        """batch_size transitions drawn uniformly, with replacement, as CPU tensors; with the
        frames of `cameras` only (None: every camera)."""
        valid = np.flatnonzero(self.has_next)
        if len(valid) == 0:
            raise ValueError("cannot sample from a replay buffer with no transitions")
        return self.transitions_at(valid[rng.integers(len(valid), size=batch_size)], cameras)

    def transition_slots(self) -> np.ndarray:
        """The slots where a stored transition starts (the indices transitions_at takes)."""
        return np.flatnonzero(self.has_next)

    def write_count(self) -> int:
        """Slots written so far: a stamp for relabel(..., unless_written_since=stamp)."""
        return self._written

    def relabel(
        self,
        slots: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        unless_written_since: int | None = None,
    ) -> int:
        """New rewards (and terminal flags) for the transitions at `slots`, e.g. from a retrained
        reward model; the observations and actions stay as they were. Returns how many changed.

        For a relabelling beside a running learner (another thread): with `unless_written_since`,
        a write_count() stamp taken before the transitions were read, it skips every transition
        one of whose slots was written since: that is another transition now (or a torn read),
        already rewarded by whoever added it."""
        slots, reward, terminated = np.asarray(slots), np.asarray(reward), np.asarray(terminated)
        with self._mutex:
            if unless_written_since is not None:
                fresh = min(self._written - unless_written_since, self.capacity)
                written = np.zeros(self.capacity, bool)
                written[(self._ptr - 1 - np.arange(fresh)) % self.capacity] = True
                keep = ~(written[slots] | written[(slots + 1) % self.capacity])
                slots, reward, terminated = slots[keep], reward[keep], terminated[keep]
            if not self.has_next[slots].all():
                raise ValueError("relabel: some slots hold no transition (see transition_slots())")
            self.reward[slots] = reward
            self.terminated[slots] = terminated
        return len(slots)

    def transitions_at(self, idx: np.ndarray, cameras: Sequence[str] | None = None) -> Batch:
        """The transitions starting at slots `idx` (each must have has_next), with the frames of
        `cameras` only (None: every camera). A reward model and the policy may read different
        cameras: each gathers only its own frames."""
        cameras = list(self.cameras) if cameras is None else list(cameras)
        unknown = sorted(set(cameras) - set(self.cameras))
        if unknown:
            raise KeyError(f"the buffer stores no camera {unknown}; it has {sorted(self.cameras)}")
        nxt = (idx + 1) % self.capacity
        return Batch.from_numpy(
            {
                "state": np.asarray(self.state[idx]),
                "images": {cam: self._gather(cam, idx) for cam in cameras},
                "action": np.asarray(self.action[idx]),
                "reward": np.asarray(self.reward[idx]),
                "next_state": np.asarray(self.state[nxt]),
                "next_images": {cam: self._gather(cam, nxt) for cam in cameras},
                "terminated": self.terminated[idx].astype(np.float32),
            }
        )

    def _gather(self, cam: str, slots: np.ndarray) -> np.ndarray:
        h, w = self.cameras[cam]
        out = np.empty((len(slots), h, w, 3), np.uint8)
        in_ram = slots < self.ram_slots
        if in_ram.all():  # one copy straight into `out` on the common paths
            return np.take(self._ram[cam], slots, axis=0, out=out)
        if not in_ram.any():
            return np.take(self._disk[cam], slots - self.ram_slots, axis=0, out=out)
        out[in_ram] = self._ram[cam][slots[in_ram]]
        out[~in_ram] = self._disk[cam][slots[~in_ram] - self.ram_slots]
        return out

    # sizes ----------------------------------------------------------------------------------
    @property
    def frame_bytes_per_slot(self) -> int:
        return sum(h * w * 3 for h, w in self.cameras.values())

    @property
    def index_bytes_per_slot(self) -> int:
        """State, action, reward and the two flags."""
        return sum(np.dtype(dtype).itemsize * int(np.prod(shape[1:])) for dtype, shape in self._index_layout().values())

    # persistence ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Make storage_dir hold exactly this buffer, on disk (no-op without a storage_dir)."""
        self._flush(reserve=0)

    def _flush(self, reserve: int) -> None:
        if self.storage_dir is None:
            return
        self._mirror_ram_tier()
        for array in [*self._files.values(), self.state, self.action, self.reward, self.terminated, self.has_next]:
            array.flush()  # msync: the data reaches the disk before buffer.json says it is there
        self._reserved_until = self._written + reserve
        self._flushed_written = self._written
        write_json_atomic(self.storage_dir / META_FILE, self._meta())

    def _mirror_ram_tier(self) -> None:
        """Copy the RAM-tier slots written since the last flush into the camera files."""
        dirty = min(self._written - self._flushed_written, self.capacity)
        start = (self._ptr - dirty) % self.capacity
        wraps = start + dirty > self.capacity
        ranges = [(start, self.capacity), (0, self._ptr)] if wraps else [(start, start + dirty)]
        for a, b in ranges:
            b = min(b, self.ram_slots)
            for cam in self.cameras if a < b else ():
                self._files[cam][a:b] = self._ram[cam][a:b]

    def _meta(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "capacity": self.capacity,
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "cameras": {cam: list(hw) for cam, hw in self.cameras.items()},
            "ram_frame_budget_bytes": self.ram_frame_budget_bytes,
            "flush_every": self.flush_every,
            "ptr": self._ptr,
            "written": self._written,
            "episode_open": self._episode_open,
            "reserved_until": self._reserved_until,
            "transitions": self._num_transitions,  # informational: recounted on open
        }

    def _restore(self, meta: dict) -> None:
        """Counters from buffer.json; drop the slots a crashed writer may have touched after it."""
        self._ptr, self._written, self._episode_open = meta["ptr"], meta["written"], meta["episode_open"]
        touched = (self._ptr + np.arange(min(meta["reserved_until"] - self._written, self.capacity))) % self.capacity
        self.has_next[touched] = False
        self.has_next[(self._ptr - 1) % self.capacity] = False  # its next observation is in a touched slot
        self._num_transitions = int(np.count_nonzero(self.has_next))
        self._flushed_written = self._reserved_until = self._written  # flush before the next write

    @classmethod
    def open(
        cls, storage_dir: Path | str, ram_frame_budget_bytes: int | None = None, flush_every: int | None = None
    ) -> ReplayBuffer:
        """Reopen a buffer in place, e.g. after the learner was killed, with what its last flush
        recorded; new transitions go on into the same directory."""
        storage_dir = Path(storage_dir)
        meta = _read_meta(storage_dir)
        buf = cls.__new__(cls)
        buf._configure(
            meta["capacity"],
            meta["state_dim"],
            meta["action_dim"],
            meta["cameras"],
            meta["ram_frame_budget_bytes"] if ram_frame_budget_bytes is None else ram_frame_budget_bytes,
            storage_dir,
            meta["flush_every"] if flush_every is None else flush_every,
        )
        buf._lock()
        arrays = _load_arrays(storage_dir, {**buf._index_layout(), **buf._frame_layout()}, "r+")
        buf._bind(arrays, {cam: arrays[_frame_key(cam)] for cam in buf.cameras}, load_ram_tier=True)
        buf._restore(meta)
        return buf

    def save(self, path: Path | str) -> None:
        """Flush in place when `path` is this buffer's storage_dir; otherwise write a complete copy
        (same layout, loadable with `load` or `open`) into a new directory."""
        with self._mutex:  # a relabelling thread may be writing rewards
            self._save(Path(path))

    def _save(self, path: Path) -> None:
        if self.storage_dir is not None and path.resolve() == self.storage_dir.resolve():
            self.flush()
            return
        if (path / META_FILE).exists():
            raise FileExistsError(f"{path} already holds a replay buffer")
        path.mkdir(parents=True, exist_ok=True)
        for name in self._index_layout():
            np.save(path / f"{name}.npy", np.asarray(getattr(self, name)))
        used = min(self._written, self.capacity)  # never-written slots stay holes in a sparse file
        for key, (dtype, shape) in self._frame_layout().items():
            out = np.lib.format.open_memmap(path / f"{key}.npy", "w+", dtype, shape)
            cam = key.removeprefix("frames_")
            for a in range(0, used, COPY_CHUNK):
                b = min(a + COPY_CHUNK, used)
                out[a:b] = self._gather(cam, np.arange(a, b))
            out.flush()
            del out
        meta = {**self._meta(), "reserved_until": self._written}
        write_json_atomic(path / META_FILE, meta)

    @classmethod
    def load(
        cls,
        path: Path | str,
        ram_frame_budget_bytes: int | None = None,
        storage_dir: Path | str | None = None,
        flush_every: int = 1000,
    ) -> ReplayBuffer:
        """A new buffer with the contents saved at `path` (left untouched): in RAM, or with its
        own storage_dir (frames beyond the RAM budget memory-mapped there)."""
        path = Path(path)
        meta = _read_meta(path)
        budget = meta["ram_frame_budget_bytes"] if ram_frame_budget_bytes is None else ram_frame_budget_bytes
        buf = cls(
            meta["capacity"], meta["state_dim"], meta["action_dim"], meta["cameras"], budget, storage_dir, flush_every
        )
        src = _load_arrays(path, {**buf._index_layout(), **buf._frame_layout()}, "r")
        for name in buf._index_layout():
            getattr(buf, name)[:] = src[name]
        used = min(meta["written"], buf.capacity)
        for cam in buf.cameras:
            frames = src[_frame_key(cam)]
            for a in range(0, used, COPY_CHUNK):
                buf._put_frames(cam, a, np.asarray(frames[a : min(a + COPY_CHUNK, used)]))
        buf._restore(meta)
        buf._flushed_written = buf._written - used  # every copied RAM-tier slot still has to reach the file
        buf.flush()
        return buf

    def close(self) -> None:
        """Flush, unmap and release the storage_dir lock."""
        if self._lock_file is None:
            return
        self.flush()
        self._files, self._disk = {}, {}
        self.state = self.action = self.reward = self.terminated = self.has_next = None
        self._lock_file.close()
        self._lock_file = None


def mixed_batch(
    online: ReplayBuffer,
    demos: ReplayBuffer,
    batch_size: int,
    demo_fraction: float,
    rng: np.random.Generator,
    cameras: Sequence[str] | None = None,
) -> Batch:
    """RLPD's symmetric sampling: round(demo_fraction * batch_size) transitions from `demos` (the
    demo / intervention buffer) first, the rest from `online`. An empty buffer gives its share to
    the other, so learning can start from demos alone or run without any. `cameras`: whose frames
    the batch carries (None: all)."""
    n_demo = round(demo_fraction * batch_size)
    if len(demos) == 0:
        n_demo = 0
    elif len(online) == 0:
        n_demo = batch_size
    if n_demo == 0:
        return online.sample(batch_size, rng, cameras)
    if n_demo == batch_size:
        return demos.sample(batch_size, rng, cameras)
    return Batch.cat([demos.sample(n_demo, rng, cameras), online.sample(batch_size - n_demo, rng, cameras)])


def _frame_key(cam: str) -> str:
    return f"frames_{cam}"


def _read_meta(path: Path) -> dict:
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"no replay buffer in {path} ({META_FILE} missing)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
    return meta


def _load_arrays(path: Path, layout: Mapping[str, tuple], mode: str) -> dict[str, np.ndarray]:
    arrays = {}
    for name, (dtype, shape) in layout.items():
        array = np.load(path / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"{path / name}.npy is {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shape}")
        arrays[name] = array
    return arrays


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write to a temporary file, fsync, rename over `path`, fsync the directory: a reader (or a
    process restarted after a crash) sees the old file or the new one, never a torn one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
