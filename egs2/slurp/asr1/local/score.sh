#!/usr/bin/env bash
# Intent accuracy of every SLURP decoding (run.sh calls it once asr.sh has finished stage 13):
#     local/score.sh [--expdir exp] [--test_sets "test devel"] [--python python3] [EXP_DIR ...]
# For each experiment (the EXP_DIRs given, else every ${expdir}/asr_*/) and each decoding in it
# (EXP_DIR/decode*/<set>/text, asr.sh stage 12), local/score.py scores the hypotheses against
# data/<set>/text — the whole set, so an utterance left undecoded counts as wrong — into
# EXP_DIR/<decode dir>/<set>/score_intent/, and an "Intent accuracy" section with one row per
# decoding and set is written at the end of EXP_DIR/RESULTS.md (replacing the one of an earlier run;
# stage 13 writes RESULTS.md anew, stage 14 packs it into model.zip).
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/score.sh) $*"
}

expdir=exp
test_sets="test devel"
python=python3

help_message="Usage: $0 [--expdir ${expdir}] [--test_sets \"${test_sets}\"] [--python ${python}] [EXP_DIR ...]"
. utils/parse_options.sh
. ./path.sh

if [ $# -gt 0 ]; then
    exps=("$@")
else
    exps=()
    for d in "${expdir}"/asr_*/; do
        case "$(basename "${d}")" in asr_stats_*) continue ;; esac  # feature statistics, not a model
        [ -d "${d}" ] && exps+=("${d%/}")
    done
fi
[ ${#exps[@]} -gt 0 ] || { log "Error: no experiment under ${expdir}/asr_*/ (training writes one: stage 11)" >&2; exit 1; }

begin="<!-- intent accuracy: written by local/score.sh -->"
end="<!-- end of intent accuracy -->"
scored=0
for exp in "${exps[@]}"; do
    [ -d "${exp}" ] || { log "Error: ${exp}: no such experiment directory" >&2; exit 1; }
    rows=()
    for decode in "${exp}"/decode*/; do
        [ -d "${decode}" ] || continue
        decode=${decode%/}
        for x in ${test_sets}; do
            hyp=${decode}/${x}/text
            [ -f "${hyp}" ] || continue
            ref=data/${x}/text
            [ -f "${ref}" ] || ref=dump/raw/${x}/text
            [ -f "${ref}" ] || { log "Error: data/${x}/text not found (stage 1 writes it)" >&2; exit 1; }
            out=$("${python}" local/score.py --ref "${ref}" --hyp "${hyp}" --dataset "$(basename "${decode}")/${x}" \
                --out_dir "${decode}/${x}/score_intent") \
                || { log "Error: scoring ${hyp} failed (see above)" >&2; exit 1; }
            header=$(head -n 2 <<< "${out}")  # the table's header and rule
            rows+=("$(tail -n 1 <<< "${out}")")
        done
    done
    if [ ${#rows[@]} -eq 0 ]; then
        log "${exp}: no decoding of ${test_sets} (stage 12 writes ${exp}/decode_*/<set>/text): nothing to score"
        continue
    fi
    results=${exp}/RESULTS.md
    {
        if [ -f "${results}" ]; then
            # the file without the section of an earlier run, nor blank lines at its end
            awk -v b="${begin}" -v e="${end}" '
                $0 == b { skip = 1 }
                !skip { if ($0 == "") blank++; else { for (; blank > 0; blank--) print ""; print } }
                $0 == e { skip = 0 }' "${results}"
            echo
        fi
        echo "${begin}"
        echo "## Intent accuracy"
        echo "- the intent is the first word of the hypothesis (local/score.sh, local/score.py); WER: of the words after it"
        echo "- reference: data/<set>/text (every utterance of the set: one not decoded counts as wrong, column No hyp.)"
        echo
        echo "${header}"
        printf '%s\n' "${rows[@]}"
        echo "${end}"
    } > "${results}.tmp"
    mv "${results}.tmp" "${results}"
    scored=$((scored + ${#rows[@]}))
    log "${results}: intent accuracy of ${#rows[@]} decoding(s)"
    printf '%s\n' "${rows[@]}"
done
log "Successfully finished: ${scored} decoding(s) scored"
