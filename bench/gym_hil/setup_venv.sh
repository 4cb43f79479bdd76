#!/usr/bin/env bash
# Create bench/gym_hil/.venv with gym-hil installed, for measure_gym_hil.py.
#
# gym-hil pins mujoco<3.9, so it cannot share the project venv. It does not
# need torch (its deps: gymnasium, mujoco, imageio[ffmpeg], pygame, pynput,
# hidapi), so none is installed. Safe to run again: an existing venv is reused
# and pip leaves satisfied requirements alone.
#
# Usage: bash bench/gym_hil/setup_venv.sh   (PYTHON=python3.11 by default)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3.11}"
gym_hil_spec="${GYM_HIL_SPEC:-gym-hil==0.1.14}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with $python" >&2
    "$python" -m venv "$venv"
fi

# Quick exit when the wanted gym-hil is already importable.
if "$venv/bin/python" - "$gym_hil_spec" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import gym_hil  # noqa: F401
name, _, want = sys.argv[1].partition("==")
sys.exit(0 if not want or version(name) == want else 1)
PY
then
    echo "gym-hil already installed in $venv" >&2
    exit 0
fi

"$venv/bin/python" -m pip install --quiet "$gym_hil_spec"
"$venv/bin/python" -c "import gym_hil, mujoco; print('gym-hil ready, mujoco', mujoco.__version__)" >&2
