#!/usr/bin/env bash
# SLURP intent classification with a SummaryMixing Conformer: the sets and options of ESPnet's
# egs2/slurp/asr1 (train with the synthetic recordings, devel to validate, test and devel decoded;
# word tokens; the intent is the first word of every transcript). After asr.sh's scoring (stage 13)
# local/score.sh adds the intent accuracy to exp/asr_*/RESULTS.md, before packing (stage 14).
# Options of asr.sh can be added, e.g.
#     ./run.sh --ngpu 4                                            # 4 GPUs, one node
#     ./run.sh --asr_config conf/train_asr_conformer.yaml          # ESPnet's self-attention Conformer
#     ./run.sh --local_data_opts "--use_synthetic false"           # real recordings only
#     ./run.sh --stage 12                                          # decode and score again
set -euo pipefail

train_set=train
valid_set=devel
test_sets="test devel"
asr_config=conf/train_asr_summarymixing_conformer.yaml
inference_config=conf/decode_asr.yaml

opts=(
    --lang en
    --train_set "${train_set}"
    --valid_set "${valid_set}"
    --test_sets "${test_sets}"
    --token_type word
    --max_wav_duration 30
    --feats_normalize utterance_mvn
    --asr_config "${asr_config}"
    --inference_config "${inference_config}"
)

# The value asr.sh will give an option (the last one on the command line, else the default here).
value() {
    local v
    v=$(utils/option_value.sh "$1" "${@:3}")
    echo "${v:-$2}"
}
stage=$(value stage 1 "$@")
stop_stage=$(value stop_stage 10000 "$@")
for a in "$@"; do
    case "${a}" in --help|-h) exec ./asr.sh "${opts[@]}" "$@" ;; esac
done
if ! [[ "${stage}" =~ ^[0-9]+$ && "${stop_stage}" =~ ^[0-9]+$ ]]; then
    exec ./asr.sh "${opts[@]}" "$@"  # which says what is wrong
fi

# Stages up to 13 (scoring), the intent accuracy, then packing and upload (14-15) with it in RESULTS.md.
if [ "${stage}" -le 13 ]; then
    ./asr.sh "${opts[@]}" "$@" --stop_stage $((stop_stage < 13 ? stop_stage : 13))
fi
if [ "${stage}" -le 13 ] && [ "${stop_stage}" -ge 13 ] && [ "$(value skip_eval false "$@")" != true ]; then
    score_opts=(--expdir "$(value expdir exp "$@")" --test_sets "$(value test_sets "${test_sets}" "$@")"
                --python "$(value python python3 "$@")")
    asr_exp=$(value asr_exp "" "$@")
    local/score.sh "${score_opts[@]}" ${asr_exp:+"${asr_exp}"}
fi
packing=true
if [ "$(value skip_packing false "$@")" = true ] && [ "$(value skip_upload true "$@")" != false ]; then
    packing=false  # stages 14 and 15 both skipped
fi
if [ "${stop_stage}" -ge 14 ] && "${packing}"; then
    ./asr.sh "${opts[@]}" "$@" --stage $((stage > 14 ? stage : 14))
fi
