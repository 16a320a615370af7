#!/bin/bash
# usage: run.sh PACKDIR SECONDS [DEVICE]: unpack, run every job of PACKDIR/jobs.txt in parallel, tar the results into $OUT
set -u
P=$1; LIMIT=$2; DEV=${3:-cuda}; W=${W:-/tmp/w}
export W DEV OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1
python3 "$(dirname "$0")/unpack.py" "$P" "$W" || exit 3
mkdir -p "$W/res" "$W/logs"
run_job() {
  name=$1; id=$2; task=$3; t0=$(date +%s)
  python3 -m echoic.cli.main eval --cached-model "$name=$W/cache/$id" --tasks "$W/tasks/$task" \
    --protocol hear --seeds 3 --out "$W/res/$name--$task" --device "$DEV" --no-report --quiet \
    > "$W/logs/$name--$task.log" 2>&1
  rc=$?
  echo "$name $task rc=$rc $(( $(date +%s) - t0 ))s: $(grep -E 'top1|mAP|onset|fms|error|Error' "$W/logs/$name--$task.log" | head -1 | tr '\n' ' ')"
  # results so far, replaced atomically: a kill at the limit still leaves the last complete tar
  flock "$W/tar.lock" bash -c 'tar czf "$OUT/partial.tgz" -C "$W" res logs && mv "$OUT/partial.tgz" "$OUT/res_so_far.tgz"'
}
export -f run_job
timeout "$LIMIT" xargs -P "${JOBS:-12}" -L 1 bash -c 'run_job "$@"' _ < "$P/jobs.txt"
echo "jobs done (rc $?)"
tar czf "$OUT/res_$(basename "$P").tgz" -C "$W" res logs
ls -la "$OUT"
