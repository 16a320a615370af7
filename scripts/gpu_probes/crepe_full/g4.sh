# call 4: arabic source; its build + crepe job; then wait for every job (at most $1 s) and return the results
set -u
cp -r .xfer/g4/data/arabic_speech_commands /tmp/data/ && cp .xfer/g4/*.md5 /tmp/data/
setsid nohup bash scripts/gpu_probes/crepe_full/crepe_job.sh "arabic_speech_commands" > /tmp/outC/job_arabic.log 2>&1 < /dev/null &
bash scripts/gpu_probes/crepe_full/collect.sh $1
