"""Child process of test_replay_crash.py: fills a buffer in storage_dir, then waits to be SIGKILLed.

    python replay_crash_child.py STORAGE_DIR MODE
MODE "explicit": add episodes, flush(), print the slot log at the flush, add a few more steps.
MODE "auto": only automatic flushes. Either way it then prints the whole slot log and "ready"
(one JSON line each) and sleeps until killed.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from replay_synthetic import CAMERAS, STATE_DIM, add_episode_steps, frame_bytes  # noqa: E402

from robot_rl.data.replay import ReplayBuffer  # noqa: E402
from robot_rl.spec import ACTION_DIM  # noqa: E402

CAPACITY, RAM_SLOTS, FLUSH_EVERY = 40, 15, 6
LENGTHS = [9, 4, 13, 2, 11, 7, 5, 8]  # 67 slots: wraps the 40-slot ring


def say(**msg):
    print(json.dumps(msg), flush=True)


def main(storage_dir: Path, mode: str) -> None:
    buf = ReplayBuffer(CAPACITY, STATE_DIM, ACTION_DIM, CAMERAS, RAM_SLOTS * frame_bytes(), storage_dir, FLUSH_EVERY)
    log = []
    for ep, length in enumerate(LENGTHS):
        add_episode_steps(buf, ep, length, terminated=ep % 2 == 0, log=log)
    if mode == "explicit":
        buf.flush()
        say(flushed_log=log)
        add_episode_steps(buf, 99, 3, terminated=True, log=log)  # after the flush: lost in the crash
    say(log=log, ends={ep: [n, ep % 2 == 0] for ep, n in enumerate(LENGTHS)} | {99: [3, True]})
    say(ready=True)
    time.sleep(120)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
