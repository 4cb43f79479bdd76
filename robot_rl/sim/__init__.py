"""The MuJoCo simulation twin of the real cell: a Franka Panda on a table with a front and a
wrist camera and a wrist F/T sensor, and the tasks reach, pick_cube and peg_insert.

Importing this package registers the gymnasium ids below, e.g.
`gymnasium.make("robot_rl/PickCube-v0", sim=SimConfig(cameras=[]))`.
"""

from gymnasium.envs.registration import register

ENV_IDS = {"reach": "robot_rl/Reach-v0", "pick_cube": "robot_rl/PickCube-v0", "peg_insert": "robot_rl/PegInsert-v0"}

for _task, _env_id in ENV_IDS.items():
    register(id=_env_id, entry_point="robot_rl.sim.env:SimTwinEnv", kwargs={"task": _task})
