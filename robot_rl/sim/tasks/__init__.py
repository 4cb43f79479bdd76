"""Tasks of the simulation twin, by name."""

from robot_rl.sim.config import TASK_CONFIGS, TaskConfig, check_choice
from robot_rl.sim.tasks.base import Task, TaskMJCF, TaskReset
from robot_rl.sim.tasks.peg_insert import PegInsertTask
from robot_rl.sim.tasks.pick_cube import PickCubeTask
from robot_rl.sim.tasks.reach import ReachTask

TASKS: dict[str, type[Task]] = {"reach": ReachTask, "pick_cube": PickCubeTask, "peg_insert": PegInsertTask}


def make_task(cfg: TaskConfig | str) -> Task:
    if isinstance(cfg, str):
        check_choice(cfg, sorted(TASKS), "task")
        cfg = TASK_CONFIGS[cfg]()
    cfg.validate()
    return TASKS[cfg.name](cfg)


__all__ = ["TASKS", "Task", "TaskMJCF", "TaskReset", "make_task"]
