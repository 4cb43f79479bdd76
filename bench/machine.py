"""What every benchmark records about the machine it ran on (shared by the bench scripts)."""

from __future__ import annotations

import os
import platform

import torch


def machine_info(load_before: tuple[float, float, float]) -> dict:
    """Python/torch versions, threads, cores, and the load average before and after the run: these
    machines are shared, and a busy neighbour shows up here."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
