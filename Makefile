# Environment and entry points of mmseg_refiner.
# `make demo` and `make test` create/refresh .venv/ on their own (idempotent: seconds when present).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.stack-installed
# Bump when the recipe below changes: it forces a re-run of the stack install.
STACK_VERSION := 1

.PHONY: env demo test lint lint-deps format clean-env

LINT_STAMP := $(VENV)/.lint-installed
LINT_PATHS := mmseg_refiner tools tests setup.py

env: $(STAMP) $(VENV)/.package-installed

# The OpenMMLab stack, following ../shared/docs/openmmlab-stack.md:
#  torch pinned exactly (a range would pull a CUDA build); setuptools <82 (pkg_resources);
#  mmcv 2.1.0 built WITH ops, without build isolation (its setup.py needs torch);
#  openmim without its broken dependencies (openxlab pins setuptools 60).
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install 'setuptools>=77,<82' wheel ninja
	$(PY) -c "import mmcv, mmcv.ops" 2>/dev/null || MMCV_WITH_OPS=1 MAX_JOBS=2 $(PIP) install --no-build-isolation mmcv==2.1.0
	$(PIP) install mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 ftfy regex \
		'numpy<2.5' opencv-python-headless pycocotools tqdm matplotlib 'setuptools>=77,<82' \
		pytest pytest-timeout build flake8
	$(PIP) install --no-deps openmim
	# LVIS API (the paper's COCO protocol); its dependencies are already here (Cython only builds)
	$(PIP) install --no-deps lvis==0.5.3
	$(PIP) install click colorama model-index pandas requests rich tabulate
	$(PY) -c "import torch, mmcv, mmdet, mmseg; from mmcv.ops import nms, roi_align; print('stack ok', torch.__version__, mmcv.__version__)"
	echo $(STACK_VERSION) > $@

# The project itself, editable; re-run when its metadata changes.
$(VENV)/.package-installed: $(STAMP) pyproject.toml setup.cfg setup.py
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

demo: env
	$(PY) tools/demo.py

test: env
	$(PY) -m pytest -q tests

# Linters live outside the stack recipe, so `make test` never waits for them. One line length
# (99) for all three, in setup.cfg.
$(LINT_STAMP): $(STAMP)
	$(PIP) install flake8==7.5.0 isort==9.0.2 yapf==0.43.0
	touch $@

lint-deps: $(LINT_STAMP)

# Check mode: prints what would change and fails; `make format` applies isort + yapf.
lint: env $(LINT_STAMP)
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff --recursive $(LINT_PATHS)

format: env $(LINT_STAMP)
	$(PY) -m isort $(LINT_PATHS)
	$(PY) -m yapf --in-place --recursive $(LINT_PATHS)

clean-env:
	rm -rf $(VENV)
