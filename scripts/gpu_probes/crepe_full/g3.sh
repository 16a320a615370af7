# call 3: esc50 source audio; build esc50 + esc50_scenes and run torchcrepe_full on them in the background
set -u
mkdir -p /tmp/data /tmp/outC
cp -r .xfer/g3/data/esc50 .xfer/g3/data/README.md /tmp/data/ && cp .xfer/g3/*.md5 /tmp/data/
setsid nohup bash scripts/gpu_probes/crepe_full/crepe_job.sh "esc50 esc50_scenes" > /tmp/outC/job_esc50.log 2>&1 < /dev/null &
sleep 20; cat /tmp/outB/run.log /tmp/outC/job_esc50.log 2>/dev/null; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
