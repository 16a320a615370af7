# wait until no echoic job runs (at most $1 s), then tar the results (no caches) into $OUT
set -u
end=$(( $(date +%s) + $1 ))
while pgrep -f "echoic.cli.main|crepe_job.sh|run.sh" > /dev/null && [ $(date +%s) -lt $end ]; do sleep 10; done
pgrep -af "echoic.cli.main" | cut -c1-150
cat /tmp/outB/run.log /tmp/outC/job_*.log
tar czf $OUT/res_B.tgz -C /tmp/wB res logs 2>/dev/null
tar czf $OUT/res_C.tgz -C /tmp/outC --exclude='cache*' . 2>/dev/null
ls -la $OUT
