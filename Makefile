# mtdepth_ros: `make demo` runs the node on the bundled model and demo data,
# `make test` runs every test. Both create .venv on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed
PKG := $(VENV)/.package-installed
TRT_STUBS := $(VENV)/mypy-stubs/.repaired

# Keep discovery on this machine and load the large-message transport profile
# (README, "Fast DDS and large messages").
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_large_messages.xml
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH))
export PYTHONUNBUFFERED := 1

.PHONY: venv test pytest typecheck demo bench clean

venv: $(PKG)

$(DEPS): requirements/*.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements/ros.txt -r requirements/vehicle.txt \
		-r requirements/eval.txt -r requirements/training.txt -r requirements/test.txt
	$(BIN)/pip install --no-deps -r requirements/typecheck-nodeps.txt
	touch $@

# A regular (not editable) install: editable installs leave out the data files
# (launch, config, models, lib/ wrappers) that ros2 launch and ros2 run need.
$(PKG): $(DEPS) setup.py setup.cfg package.xml \
	$(shell git ls-files --cached --others --exclude-standard mtdepth_ros launch config models scripts 2>/dev/null)
	$(BIN)/pip install --no-deps --no-build-isolation .
	touch $@

test: typecheck pytest

# tensorrt-stubs as published do not parse; mypy.ini reads this repaired copy.
$(TRT_STUBS): $(DEPS) scripts/repair_tensorrt_stubs.py
	$(BIN)/python scripts/repair_tensorrt_stubs.py $(VENV)/mypy-stubs
	touch $@

typecheck: $(PKG) $(TRT_STUBS)
	$(BIN)/mypy

pytest: $(PKG)
	$(BIN)/python -m pytest -q test

demo: $(PKG)
	$(BIN)/python -m demo

bench: $(PKG)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info demo_out .pytest_cache .mypy_cache
