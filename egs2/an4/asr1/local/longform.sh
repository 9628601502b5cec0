#!/usr/bin/env bash
# Long recordings made of AN4 test speech, decoded by the recipe's model(s) in several ways:
#   1. builds ${set_dir} (local/make_longform.py): per speaker, that speaker's test utterances one after
#      the other with their real silences (~26-48 s), and one recording of all 130 (~6 min), with the
#      utterance boundaries as reference timestamps (done once);
#   2. for each model in ${asr_exps}, and each decoding in ${decodings} (CTC greedy / prefix beam), with
#      python -m espnet_summarymixing.transcribe:
#      - per_utterance: every AN4 test utterance alone (the reference point);
#      - one_pass: each recording through the encoder at once;
#      - segmented: cut in the pauses (> ${segment_pause} s) of a first one-pass decoding (the default mode);
#      - segmented_length: cut at quiet moments into pieces of at most ${segment_seconds} s only;
#      - SummaryMixing encoders only: one_pass_window<w> (each frame's summary over +-w s, for each w of
#        ${windows}) and one_pass_pauses (a second pass, each stretch between pauses its own summary);
#   3. scores WER / CER and the word timestamps against the utterance and speech boundaries
#      (local/score_longform.py) into <exp>/longform/, and sums everything up in <exp>/longform/longform.md.
# A decoding already scored is not run again (delete its folder to redo it).
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/longform.sh) $*"
}
SECONDS=0

asr_exps=exp/asr_train_asr_summarymixing_raw_en_char_sp   # one or more training folders (or model.zip)
decodings="greedy beam"
segment_seconds=30
segment_pause=0.5
windows=""              # e.g. "3 10": one-pass decodings with a summary over +-w seconds around each frame
set_dir=data/longform
test_set=test           # the Kaldi data dir whose utterances are decoded one by one
gap=0                   # seconds of digital silence added between utterances
python=python3

help_message="Usage: $0 [--asr_exps \"${asr_exps}\"] [--decodings \"${decodings}\"] [--segment_seconds ${segment_seconds}] [--windows \"5 10\"] [--set_dir ${set_dir}] [--gap ${gap}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }
. ./path.sh
. ./db.sh

if [ ! -f "${set_dir}/reference.json" ]; then
    [ -n "${AN4}" ] || { log "Error: set AN4 (db.sh or the environment) to the AN4 corpus directory"; exit 1; }
    log "building ${set_dir} from ${AN4}"
    "${python}" local/make_longform.py "${AN4}" "${set_dir}" --gap "${gap}"
fi
[ -f "data/${test_set}/wav.scp" ] || { log "Error: data/${test_set}/wav.scp not found: run ./run.sh --stop_stage 1 first"; exit 1; }
mapfile -t recordings < <(cut -d' ' -f2- "${set_dir}/wav.scp")

for exp in ${asr_exps}; do
    out=${exp%.zip}/longform
    [ -e "${exp}" ] || { log "Error: ${exp} not found: train it first"; exit 1; }
    mkdir -p "${out}"
    for decoding in ${decodings}; do
        runs=("per_utterance" "one_pass" "segmented" "segmented_length")
        if grep -q "^encoder: summarymixing" "${exp%.zip}/config.yaml" 2>/dev/null; then
            for w in ${windows}; do runs+=("one_pass_window${w}"); done
            runs+=("one_pass_pauses")
        fi
        for run in "${runs[@]}"; do
            name=${run}_${decoding}
            dir=${out}/${name}
            if [ -f "${dir}/score.json" ]; then
                log "${name}: already scored"; continue
            fi
            rm -rf "${dir}"; mkdir -p "${dir}"
            start=${SECONDS}
            case ${run} in
                per_utterance)
                    # transcribe prints <file> TAB <text>; the utterance ids come from wav.scp
                    "${python}" -m espnet_summarymixing.transcribe --model "${exp}" --decoding "${decoding}" \
                        $(cut -d' ' -f2 "data/${test_set}/wav.scp") > "${dir}/by_file.txt" 2> "${dir}/transcribe.log" \
                        || { log "Error: ${name} failed, see ${dir}/transcribe.log"; exit 1; }
                    awk 'NR == FNR { id[$2] = $1; next } { split($0, f, "\t"); print id[f[1]], f[2] }' \
                        "data/${test_set}/wav.scp" "${dir}/by_file.txt" > "${dir}/text"
                    hyp=${dir}/text ;;
                *)
                    opts=(--output_format json --output_dir "${dir}/json")
                    case ${run} in
                        one_pass) opts+=(--mode one_pass) ;;
                        segmented) opts+=(--mode segmented --segment_pause_seconds "${segment_pause}"
                                          --max_segment_seconds "${segment_seconds}") ;;
                        segmented_length) opts+=(--mode segmented --segment_pause_seconds 0
                                                 --max_segment_seconds "${segment_seconds}") ;;
                        one_pass_window*) opts+=(--mode one_pass --summary_window_seconds "${run#one_pass_window}") ;;
                        one_pass_pauses) opts+=(--mode one_pass --summary_pause_seconds "${segment_pause}") ;;
                    esac
                    "${python}" -m espnet_summarymixing.transcribe --model "${exp}" --decoding "${decoding}" \
                        "${opts[@]}" "${recordings[@]}" > "${dir}/files.txt" 2> "${dir}/transcribe.log" \
                        || { log "Error: ${name} failed, see ${dir}/transcribe.log"; exit 1; }
                    # <rec_id>.flac.json -> <rec_id>.json, the scorer's naming
                    for f in "${dir}"/json/*.json; do
                        b=$(basename "${f}"); mv "${f}" "${dir}/json/${b%%.*}.json"
                    done
                    hyp=${dir}/json ;;
            esac
            echo $((SECONDS - start)) > "${dir}/seconds"
            "${python}" local/score_longform.py "${set_dir}" "${hyp}" --out_json "${dir}/score.json.partial" \
                > "${dir}/score.md"
            mv "${dir}/score.json.partial" "${dir}/score.json"
            log "${name}: $(grep -m1 'total speaker' "${dir}/score.md" || true) ($(cat "${dir}/seconds") s)"
        done
    done
    "${python}" - "${out}" > "${out}/longform.md" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
print(f"Long-form AN4 test ({out.parent.name}): WER / CER in %, timestamp errors in seconds (median / 90th "
      "percentile) of each utterance's first word start and last word end against the speech inside it.\n")
print("| decoding | speaker recordings WER / CER | all (6 min) WER / CER | start error | end error | decoding time (s) |")
print("|---|---|---|---|---|---|")
for d in sorted(p for p in out.iterdir() if (p / "score.json").is_file()):
    s = json.loads((d / "score.json").read_text())
    t = s["totals"]
    rate = lambda kind, m: f"{t[kind][m]['rate']:.1f}" if kind in t and t[kind][m]["rate"] is not None else "-"
    timing = (t.get("speaker") or t.get("all") or {}).get("timing")
    err = lambda side: (f"{timing['speech'][side]['median']:.2f} / {timing['speech'][side]['p90']:.2f}"
                        if timing and timing["speech"][side]["count"] else "-")
    print(f"| {d.name} | {rate('speaker', 'wer')} / {rate('speaker', 'cer')} | {rate('all', 'wer')} / "
          f"{rate('all', 'cer')} | {err('start')} | {err('end')} | {(d / 'seconds').read_text().strip()} |")
PY
    cat "${out}/longform.md"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
