#!/usr/bin/env bash
# Hour-long recordings through the user's command: peak memory and speed of
# `python -m espnet_summarymixing.transcribe` on the recipe's packed model (front end, global_mvn
# normalisation, encoder, CTC: the path a user runs), one recording per run.
#   1. builds ${set_dir}/<h>h.flac for each h of ${hours}: the long-form set's 6-minute recording of all
#      130 AN4 test utterances (local/longform.sh builds it) repeated to h hours (done once);
#   2. for each recording and each transcribe option set of ${decodings} (";"-separated), runs the command
#      under /usr/bin/time and writes the peak resident memory, wall time and real-time factor to
#      ${out}/hours.md (and hours.json); the transcripts go to ${out}/<h>h.<i>.txt.
# Run it alone on the machine: the times are wall clock.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/hours.sh) $*"
}

model=exp/asr_train_asr_summarymixing_raw_en_char_sp/model.zip
hours="1 2"
decodings="--output_format text;--output_format json"   # transcribe options of each run (default decoding first)
set_dir=data/longform
python=python3

help_message="Usage: $0 [--model ${model}] [--hours \"${hours}\"] [--decodings \"${decodings}\"]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }
. ./path.sh

[ -f "${model}" ] || { log "Error: ${model} not found: run ./run.sh first (stage 14 packs it)"; exit 1; }
[ -f "${set_dir}/wav.scp" ] || { log "Error: ${set_dir}/wav.scp not found: run local/longform.sh first"; exit 1; }
all=$(awk '$1 == "all" { print $2 }' "${set_dir}/wav.scp")
[ -n "${all}" ] || { log "Error: ${set_dir}/wav.scp has no recording 'all'"; exit 1; }
out=${model%/*}/hours
mkdir -p "${out}"

for h in ${hours}; do
    [[ "${h}" =~ ^[0-9]+$ ]] && [ "${h}" -ge 1 ] || { log "Error: --hours: whole hours, got '${h}'"; exit 2; }
    if [ ! -f "${set_dir}/${h}h.flac" ]; then
        log "building ${set_dir}/${h}h.flac from ${all}"
        "${python}" - "${all}" "${h}" "${set_dir}/${h}h.flac" <<'EOF'
import sys

import numpy as np
import soundfile

samples, rate = soundfile.read(sys.argv[1], dtype="int16")
total = int(sys.argv[2]) * 3600 * rate
reps = -(-total // len(samples))
soundfile.write(sys.argv[3] + ".partial.flac", np.tile(samples, reps)[:total], rate, format="FLAC")
EOF
        mv "${set_dir}/${h}h.flac.partial.flac" "${set_dir}/${h}h.flac"
    fi
done

rows=()
IFS=';' read -r -a runs <<<"${decodings}"
for h in ${hours}; do
    for i in "${!runs[@]}"; do
        options=${runs[${i}]}
        result=${out}/${h}h.${i}
        log "${h} h, transcribe ${options}"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%M %e" -o "${result}.time" "${python}" -m espnet_summarymixing.transcribe \
            --model "${model}" ${options} --verbose --output "${result}.txt" "${set_dir}/${h}h.flac" \
            2> "${result}.log" || { log "Error: transcribe failed, see ${result}.log"; tail -3 "${result}.log"; exit 1; }
        read -r kb seconds < "${result}.time"
        rows+=("${h} ${kb} ${seconds} ${options}")
        log "${h} h: peak RSS $((kb / 1024)) MB, ${seconds} s"
    done
done

"${python}" - "${out}" "${model}" "${rows[@]}" <<'EOF'
import json
import platform
import subprocess
import sys
import time

out, model, *rows = sys.argv[1:]
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
records, lines = [], [
    f"# transcribe on hour-long recordings ({time.strftime('%Y-%m-%d')}, {cpu}, {platform.machine()}, "
    f"commit {commit or '?'})", "", f"Model: `{model}`. Peak resident memory and wall time of the whole command "
    "(start-up and model loading included), one recording per run, run alone.", "",
    "| recording | transcribe options | peak RSS (GB) | wall time (s) | real-time factor |", "|---|---|---|---|---|"]
for row in rows:
    hours, kb, seconds, options = row.split(" ", 3)
    rtf = float(seconds) / (int(hours) * 3600)
    records.append({"hours": int(hours), "options": options, "peak_rss_bytes": int(kb) * 1024,
                    "wall_seconds": float(seconds), "rtf": round(rtf, 4), "commit": commit,
                    "date": time.strftime("%Y-%m-%d"), "cpu": cpu})
    lines.append(f"| {hours} h | `{options}` | {int(kb) * 1024 / 1e9:.2f} | {float(seconds):.0f} | {rtf:.4f} |")
open(f"{out}/hours.md", "w").write("\n".join(lines) + "\n")
open(f"{out}/hours.json", "w").write(json.dumps(records, indent=1) + "\n")
print("\n".join(lines))
EOF
log "done in ${SECONDS} s: ${out}/hours.md"
