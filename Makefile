# The two set-up commands of the README. Each creates the venv and installs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint

run: $(STAMP)
	$(VENV)/bin/robot-rl run

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# torch/torchvision first, pinned: our machines serve exactly these from local disk, and open_clip
# needs a torchvision that matches torch. The `ros` extra is the ROS 2 Kilted wheels, so that the
# tests in tests/ros run with real rclpy (they fail rather than skip without it: see
# tests/ros/conftest.py for the explicit opt-out on a workstation).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev,ros]'
	touch $(STAMP)
