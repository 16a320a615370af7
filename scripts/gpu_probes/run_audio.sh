#!/bin/bash
# usage: run_audio.sh PACKDIR SECONDS [DEVICE]: FLAC -> wav task folders, model variants, every job of
# PACKDIR/audio_jobs.txt in parallel (embed on the CPU cores, probes on DEVICE), results tarred into $OUT
set -u
P=$1; LIMIT=$2; DEV=${3:-cuda}; W=${W:-/tmp/wa}
export W DEV OMP_NUM_THREADS=${THREADS:-3} HF_HUB_OFFLINE=1
mkdir -p "$W/tasks" "$W/models" "$W/res" "$W/logs"
python3 - "$P" "$W" <<'PY' || exit 3
import json, shutil, sys
from pathlib import Path
import soundfile as sf
pack, work = Path(sys.argv[1]), Path(sys.argv[2])
for task in sorted((pack / "audio").iterdir()):
    for f in task.rglob("*"):
        out = work / "tasks" / task.name / f.relative_to(task)
        if f.is_dir():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".flac":
            x, sr = sf.read(f, dtype="int16")
            sf.write(out.with_suffix(".wav"), x, sr, subtype="PCM_16")
        else:
            shutil.copy2(f, out)
for m in sorted((pack / "models").iterdir()):
    shutil.copytree(m, work / "models" / m.name, dirs_exist_ok=True)
for name, v in json.loads((pack / "variants.json").read_text()).items():
    dst = work / "models" / name
    shutil.copytree(work / "models" / v["model"], dst, dirs_exist_ok=True)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["model"]["embed"] = {**cfg["model"].get("embed", {}), **v["embed"]}
    cfg["model"]["name"] = f"{cfg['model'].get('name') or v['model']}-{name}"
    (dst / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
print("tasks", sorted(p.name for p in (work / "tasks").iterdir()), "models", sorted(p.name for p in (work / "models").iterdir()))
PY
source "$(dirname "$0")/common.sh"
run_job() { eval_job "$1--$2" --model "$W/models/$1" --tasks "$W/tasks/$2" --cache "$W/cache"; }
export -f run_job
timeout "$LIMIT" xargs -P "${JOBS:-4}" -L 1 bash -c 'run_job "$@"' _ < "$P/audio_jobs.txt"
echo "jobs done (rc $?)"
tar czf "$OUT/res_$(basename "$P").tgz" -C "$W" res logs
ls -la "$OUT"
