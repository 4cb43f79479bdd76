"""What the benchmarks share: the record of the machine they ran on, and how repeated timings are summarised."""

from __future__ import annotations

import os
import platform
import statistics

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


def spread(values: list[float]) -> dict:
    """Median, min and max of repeated measurements, and the runs themselves."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": [round(v, 3) for v in values],
    }
