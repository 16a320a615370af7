# echoic — the two README commands: `make demo` and `make test`. Everything else is installed here.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages used by task builders (soundfont renders), the report screenshot and the
# explorer's browser test (headless Chromium + its driver, tests/serve; required under make test),
# PortAudio, which `import slab` (the spatial extra: KEMAR HRTF) needs, and cairo, which cairosvg
# (the sheet extra: score snippets rasterised) loads.
APT_PACKAGES := fluidsynth fluid-soundfont-gm timgm6mb-soundfont chromium chromium-driver libportaudio2 libcairo2
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-peers test-converters test-ray lint demo apt clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,spatial,text,syllables,sheet]'
	# the two measured human HRTFs (SONICOM SOFA files); its wheel pins pywin32, so no dependencies
	$(BIN)/pip install -q --no-deps spatialaudiometrics==0.1.2
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
	ECHOIC_REQUIRE_BROWSER=1 ECHOIC_REQUIRE_SPATIAL=1 ECHOIC_REQUIRE_TEXT=1 ECHOIC_REQUIRE_SYLLABLES=1 ECHOIC_REQUIRE_SHEET=1 $(BIN)/python -m pytest -q -n 2 --durations=15 tests

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
CONVERTER_PACKAGES := espnet==202511 dasheng==0.0.9 einops==0.8.2 s3prl==0.4.18
# Imported by a reference only, never by echoic or other tests: kept out of the venv in their own
# folder (tests/convert/beats_reference.py). torchaudio's compiled parts do not load beside CPU torch
# 2.13; without lib/*.so its pure-Python Kaldi fbank works. typeguard would register a pytest plugin.
CONVERTER_REFS := $(VENV)/converter-refs
CONVERTER_ISOLATED := torchaudio==2.11.0 typeguard==4.6.1
# The AST / SSAST code (s3prl's upstream/ast, upstream/ssast) asserts timm 0.4.5: in a folder of its
# own (tests/convert/spectrogram_reference.py; a stand-in torchvision there too, tests/convert/stubs).
CONVERTER_TIMM := timm==0.4.5
# PaSST (hear21passt needs timm >= 0.4.12, for a download helper), ATST-Frame (avex: only its
# atst_frame.py is imported, tests/convert/atst_reference.py) and CLAP 2022's Cnn14 (msclap +
# torchlibrosa, whose filters need librosa, installed with its dependencies): folders of their own.
CONVERTER_PASST := hear21passt==0.0.26 timm==0.4.12
CONVERTER_AVEX := avex==1.4.0
CONVERTER_CLAP := msclap==1.3.4 torchlibrosa==0.1.0
CONVERTER_DEPS := librosa==0.11.0

test-converters: $(STAMP)
	$(if $(strip $(CONVERTER_PACKAGES)),$(BIN)/pip install -q --no-deps $(CONVERTER_PACKAGES))
	$(BIN)/pip install -q $(CONVERTER_DEPS)
	$(BIN)/pip install -q --no-deps --upgrade --target $(CONVERTER_REFS) $(CONVERTER_ISOLATED)
	$(BIN)/pip install -q --no-deps --upgrade --target $(CONVERTER_REFS)/timm-0.4.5 $(CONVERTER_TIMM)
	$(BIN)/pip install -q --no-deps --upgrade --target $(CONVERTER_REFS)/passt $(CONVERTER_PASST)
	$(BIN)/pip install -q --no-deps --upgrade --target $(CONVERTER_REFS)/avex $(CONVERTER_AVEX)
	$(BIN)/pip install -q --no-deps --upgrade --target $(CONVERTER_REFS)/clap $(CONVERTER_CLAP)
	rm -f $(CONVERTER_REFS)/torchaudio/lib/*.so
	ECHOIC_REQUIRE_CONVERTERS=1 ECHOIC_CONVERTER_REFS=$(CONVERTER_REFS) $(BIN)/python -m pytest -q tests/convert

# Ray Data extraction (optional extra, tests/ray_engine/): a local Ray on this machine, loopback only.
test-ray: $(STAMP)
	$(BIN)/pip install -q -e '.[ray]'
	ECHOIC_REQUIRE_RAY=1 $(BIN)/python -m pytest -q tests/ray_engine

demo: $(STAMP) apt
	$(BIN)/python -m echoic.cli.demo

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
