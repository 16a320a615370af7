# echoic — the two README commands: `make demo` and `make test`. Everything else is installed here.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages used by task builders (soundfont renders) and the report screenshot.
APT_PACKAGES := fluidsynth fluid-soundfont-gm timgm6mb-soundfont
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-peers test-converters lint demo apt clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

test: $(STAMP) apt lint
	$(BIN)/python -m pytest -q -n 2 --durations=15 tests

# Offline peer encoders (optional extra): their PyPI packages pin things that cannot or need not be
# installed here, so they go in without their dependencies, after the ones really used (docs/models.md).
PEER_DEPS := librosa resampy scipy webrtcvad-wheels onnxruntime scikit-learn tqdm
PEER_PACKAGES := aisfx==0.1.2 resemblyzer==0.1.4 openwakeword==0.5.1 torchcrepe==0.0.24

test-peers: $(STAMP)
	$(BIN)/pip install -q $(PEER_DEPS)
	$(BIN)/pip install -q --no-deps $(PEER_PACKAGES)
	ECHOIC_REQUIRE_PEERS=1 $(BIN)/python -m pytest -q tests/zoo

# Converter parity (tests/convert/, docs/converting.md): each converted family against its reference
# implementation from PyPI, random weights, real clips. References are test-only installs (transformers
# comes with the test extra; later families add theirs to CONVERTER_PACKAGES); a missing one fails here.
CONVERTER_PACKAGES :=

test-converters: $(STAMP)
	$(if $(strip $(CONVERTER_PACKAGES)),$(BIN)/pip install -q --no-deps $(CONVERTER_PACKAGES))
	ECHOIC_REQUIRE_CONVERTERS=1 $(BIN)/python -m pytest -q tests/convert

demo: $(STAMP) apt
	$(BIN)/python -m echoic.cli.demo

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
