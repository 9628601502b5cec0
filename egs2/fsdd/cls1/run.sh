#!/usr/bin/env bash
# Spoken-digit recognition (keyword spotting with ten words) on the Free Spoken Digit Dataset, 8 kHz,
# with a SummaryMixing Conformer sized to train on a 2-core CPU. Two protocols:
#     ./run.sh                 # one split by speaker (local/data.sh: dev lucas, test nicolas, train the others)
#     ./run.sh --folds all     # leave-one-speaker-out over every speaker, then the usual split (takes 0-4 test)
# --folds also takes a list of speakers and/or "takes" (e.g. --folds "george nicolas"). Each fold is a
# whole cls.sh run in exp/loso-<speaker>/ (exp/takes/) on data/{train,dev,test}_loso-<speaker>: test
# every take of that speaker, dev takes 45-49 of the others, train the rest. A re-run with the same
# options skips the folds it finished (exp/<fold>/.done_<hash of the options>), so an interrupted run
# goes on where it stopped; then local/fold_results.py writes exp/RESULTS_folds.md and
# exp/RESULTS_folds.json (per fold, mean, pooled per-class table and confusion matrix). Options of cls.sh
# can be added, e.g.
#     ./run.sh --cls_config conf/tuning/train_cls_conformer_e4_size96_mlp384_heads4_k15.yaml   # self-attention twin
#     ./run.sh --folds all --cls_args "--seed 1"                                               # another seed
#     ./run.sh --stage 7                                                                      # classify and score again
#     ./run.sh --local_data_opts "--test_speakers theo,nicolas --dev_speakers yweweler"       # another split
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh) $*"
}

folds=""   # empty: the one split of local/data.sh; "all": every speaker, then "takes"; or a list of them
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --folds) [ $# -ge 2 ] || { log "Error: --folds needs a value (all, or speakers and/or takes)"; exit 2; }
                 folds=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

common=(
    --fs 8k
    --speed_perturb_factors "0.9 1.0 1.1"
    --feats_normalize utterance_mvn
    --min_wav_duration 0.1
    --max_wav_duration 3
    --nj 2
    --inference_nj 2
    --label_list conf/labels.txt
    --cls_config conf/train_cls_summarymixing.yaml
)

if [ -z "${folds}" ]; then
    ./cls.sh --train_set train --valid_set dev --test_sets "dev test" "${common[@]}" "${args[@]}"
    exit 0
fi

. ./path.sh
. ./db.sh
if [ "${folds}" = all ]; then
    folds="$(local/data.sh --list_speakers true) takes"
fi
key=$(printf '%s\n' "${args[@]}" | md5sum | cut -c1-12)
for fold in ${folds}; do
    if [ "${fold}" = takes ]; then name=takes; else name=loso-${fold}; fi
    if [ -f "exp/${name}/.done_${key}" ]; then
        log "fold ${name}: finished before with these options (exp/${name}/.done_${key}); skipped"
        continue
    fi
    log "fold ${name}: ./cls.sh ... --expdir exp/${name} ${args[*]}"
    ./cls.sh --train_set "train_${name}" --valid_set "dev_${name}" --test_sets "dev_${name} test_${name}" \
        --local_data_opts "--fold ${fold}" --expdir "exp/${name}" "${common[@]}" "${args[@]}"
    printf '%s\n' "${args[@]}" > "exp/${name}/.done_${key}"
done
python3 local/fold_results.py exp --out exp/RESULTS_folds.md
