# Sourced by run.sh and run_audio.sh. eval_job LABEL EVAL_ARGS...: one `echoic eval` (PROTOCOL,
# default hear; 3 seeds; probes on $DEV) into $W/res/LABEL, a one-line summary, then every result so
# far tarred into $OUT/res_so_far.tgz, replaced atomically: a kill at the limit keeps the last tar.
eval_job() {
  local label=$1 t0 rc
  shift
  t0=$(date +%s)
  python3 -m echoic.cli.main eval "$@" --protocol "${PROTOCOL:-hear}" --seeds 3 \
    --out "$W/res/$label" --device "$DEV" --no-report --quiet > "$W/logs/$label.log" 2>&1
  rc=$?
  echo "$label rc=$rc $(( $(date +%s) - t0 ))s: $(grep -E 'top1|mAP|onset|fms|error|Error' "$W/logs/$label.log" | head -1 | tr '\n' ' ')"
  flock "$W/tar.lock" bash -c 'tar czf "$OUT/partial.tgz" -C "$W" res logs && mv "$OUT/partial.tgz" "$OUT/res_so_far.tgz"'
}
export -f eval_job
