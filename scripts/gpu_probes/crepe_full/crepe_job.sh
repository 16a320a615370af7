# build each task of $1 from /tmp/data, check it against this machine's md5 list, then torchcrepe_full HEAR (3 seeds) on cuda
set -u
export PYTHONPATH=/tmp/site:$PWD/src HF_HUB_OFFLINE=1 OMP_NUM_THREADS=4
for t in $1; do
  s=$(date +%s)
  python3 -m echoic.cli.main tasks build --out /tmp/tasks --tasks $t --sample-rate 16000 --data /tmp/data --quiet || echo "build $t failed"
  (cd /tmp/tasks/$t-v1.0.0-full && md5sum -c --quiet /tmp/data/$t.md5 > /tmp/outC/$t.md5check 2>&1; echo "build $t $(( $(date +%s) - s ))s; md5 mismatches: $(wc -l < /tmp/outC/$t.md5check); files $(find . -type f | wc -l) vs $(wc -l < /tmp/data/$t.md5)")
  ( s=$(date +%s); python3 -m echoic.cli.main eval --model torchcrepe_full --embed-device cuda --tasks /tmp/tasks/$t-v1.0.0-full --protocol hear --seeds 3 --out /tmp/outC/res_$t --cache /tmp/cache_$t --device cuda --no-report --quiet > /tmp/outC/$t.eval.log 2>&1; echo "eval $t rc=$? $(( $(date +%s) - s ))s" ) &
done
wait
