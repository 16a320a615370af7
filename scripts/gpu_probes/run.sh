#!/bin/bash
# usage: run.sh PACKDIR SECONDS [DEVICE]: unpack, run every job of PACKDIR/jobs.txt in parallel, tar the results into $OUT
set -u
P=$1; LIMIT=$2; DEV=${3:-cuda}; W=${W:-/tmp/w}
export W DEV OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1
python3 "$(dirname "$0")/unpack.py" "$P" "$W" || exit 3
mkdir -p "$W/res" "$W/logs"
source "$(dirname "$0")/common.sh"
run_job() { eval_job "$1--$3" --cached-model "$1=$W/cache/$2" --tasks "$W/tasks/$3"; }
export -f run_job
timeout "$LIMIT" xargs -P "${JOBS:-12}" -L 1 bash -c 'run_job "$@"' _ < "$P/jobs.txt"
echo "jobs done (rc $?)"
tar czf "$OUT/res_$(basename "$P").tgz" -C "$W" res logs
ls -la "$OUT"
