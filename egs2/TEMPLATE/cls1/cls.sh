#!/usr/bin/env bash
# ESPnet2-style classification recipe (keyword spotting, spoken digits, sound events): the stages,
# their numbers and the option names are those of ESPnet's egs2/TEMPLATE/cls1/cls.sh; the work is
# done by the pip-installed ESPnet (espnet2.bin.cls_train; inference: its cls_inference, batched, in
# pyscripts/cls_inference.py) and by the helpers this
# template shares with asr1 (utils/, pyscripts/). A corpus recipe's run.sh sets the data sets and
# configs and calls this script. Data directories hold wav.scp, utt2spk and text = "<utt> <label>".
set -euo pipefail

recipe_name=cls.sh
. utils/recipe_lib.sh     # log, die, need_from, run_stage, stage_start/stage_done, run_inference...
. utils/recipe_stages.sh  # the options and stages cls.sh shares with asr.sh
SECONDS=0

# General configuration. The options asr.sh has too (stage, stop_stage, ngpu, num_nodes, nj, inference_nj,
# gpu_inference, dumpdir, expdir, python, local_data_opts, speed_perturb_factors, audio_format, fs,
# min_wav_duration, max_wav_duration, feats_normalize, train_set, valid_set, test_sets, packed_model,
# hf_repo) and their defaults are in utils/recipe_stages.sh.
common_options
skip_data_prep=false    # skip stages 1-4 (data preparation, audio formatting, length filtering, label list)
skip_train=false        # skip stages 5-6 (statistics, training)
skip_eval=false         # skip stages 7-8 (inference and scoring)
skip_packing=false      # skip stage 9 (packing)
skip_upload=true        # skip stage 10 (upload; needs --hf_repo)
# The stages each --skip_* option skips, in order: "N step" or, for this script's own steps, "N step (name)".
# Stage N runs the function stage_<step>: utils/recipe_stages.sh's for the shared steps, below for the others.
# The audio formatting (stage 2) does the speed perturbation.
stage_group skip_data_prep "1 data" "2 format" "3 filter" "4 token_list (label list)"
stage_group skip_train "5 stats" "6 train"
stage_group skip_eval "7 infer (inference)" "8 score (scoring)"
stage_group skip_packing "9 pack"
stage_group skip_upload "10 upload"

# Labels
label_list=""           # a fixed label list (one per line, in class-id order); default: the training labels, sorted

# Classification model
cls_config=""           # training config (conf/train_cls_*.yaml)
cls_args=""             # extra options of cls_train
cls_tag=""              # default: the config's file name + options
cls_exp=""              # default: ${expdir}/cls_${cls_tag}
cls_stats_dir=""        # default: ${expdir}/cls_stats_${fs}

# Inference
inference_model=valid.acc.best.pth
inference_tag=""        # default: inference_<model name>
inference_batch_size=32 # clips per forward pass of stage 7 (pyscripts/cls_inference.py: ESPnet's, batched)

help_message=$(cat <<EOF
Usage: $0 --train_set <name> --valid_set <name> --test_sets "<name> ..." --cls_config <yaml> [options]

ESPnet-style classification recipe (data directories: wav.scp, utt2spk, text = "<utt> <label>"). Stages:
   1 data preparation (local/data.sh)                  6 training (CPU, one or many GPUs, nodes)
   2 audio formatting into ${dumpdir}/raw (+ speed perturbation) 7 inference (--inference_nj jobs)
   3 length filtering                                  8 scoring (accuracy, macro-F1, per class, confusion) and RESULTS.md
   4 label list (+ check of every set's labels)        9 packing (${expdir}/.../model.zip)
   5 feature statistics                               10 upload to the Hugging Face Hub (--hf_repo)
Stage groups that can be skipped (as in ESPnet's cls.sh), on top of --stage and --stop_stage:
  --skip_data_prep (${skip_data_prep}): skip stages 1-4 (data preparation, audio formatting, length filtering, label list)
  --skip_train (${skip_train}): skip stages 5-6 (statistics, training)
  --skip_eval (${skip_eval}): skip stages 7-8 (inference and scoring)
  --skip_packing (${skip_packing}): skip stage 9 (packing)
  --skip_upload (${skip_upload}): skip stage 10 (upload; needs --hf_repo)
Options (default):
  --label_list ("${label_list}")
  --cls_config ("${cls_config}") --cls_args ("${cls_args}") --cls_tag ("${cls_tag}") --cls_exp ("${cls_exp}")
  --cls_stats_dir ("${cls_stats_dir}")
  --inference_model (${inference_model}) --inference_tag ("${inference_tag}") --inference_batch_size (${inference_batch_size})
$(common_options_help)
EOF
)

parse_recipe_options "$@"  # utils/recipe_stages.sh: the options, then path.sh and cmd.sh

# ---------------------------------------------------------------------------------------------
# Check the options before anything runs (check_common_options, below, those asr.sh has too).
if [ -n "${label_list}" ] && [ ! -f "${label_list}" ]; then die "--label_list ${label_list}: no such file"; fi
[[ "${inference_batch_size}" =~ ^[1-9][0-9]*$ ]] \
    || die "--inference_batch_size must be a positive integer, got '${inference_batch_size}'"

# ---------------------------------------------------------------------------------------------
# Derived names (as ESPnet's).
set_common_names  # train_set_sp, data_feats
token_list=data/token_list/${train_set}/labels.txt  # one per training set: tasks sharing data/ keep their own
if [ -z "${cls_tag}" ]; then
    if [ -n "${cls_config}" ]; then cls_tag="$(basename "${cls_config}" .yaml)"; else cls_tag=train; fi
    if [ -n "${cls_args}" ]; then cls_tag+="$(echo "${cls_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')"; fi
    if [ -n "${speed_perturb_factors}" ]; then cls_tag+="_sp"; fi
fi
if [ -z "${cls_stats_dir}" ]; then
    cls_stats_dir="${expdir}/cls_stats_${fs}"
    if [ -n "${speed_perturb_factors}" ]; then cls_stats_dir+="_sp"; fi
fi
[ -n "${cls_exp}" ] || cls_exp="${expdir}/cls_${cls_tag}"
[ -n "${inference_tag}" ] || inference_tag="inference_$(echo "${inference_model}" | sed -e 's/\//_/g' -e 's/\.[^.]*$//g')"
# shellcheck disable=SC2086
eval_sets=$(unique_sets "${valid_set}" ${test_sets} | tr '\n' ' ')

# The model the shared stages train and pack (utils/recipe_stages.sh): ESPnet's cls task on the label
# (one word, from the label list).
task=cls task_config=${cls_config} task_args=${cls_args} task_exp=${cls_exp} task_stats_dir=${cls_stats_dir}
task_model=${inference_model} target=label target_fold_length=1 target_shape_suffix=""
target_opts=(--token_list "${token_list}" --token_type word)

# shellcheck disable=SC2119
check_common_options  # last, as it imports the Python stack

# ---------------------------------------------------------------------------------------------
# This script's own stages (utils/recipe_stages.sh has the others).

# Stage 4: the label list (--label_list, else the training labels), checked against every set's labels.
stage_token_list() {
    local x sets=()
    stage_start token_list "label list ${token_list}"
    for x in "${train_set_sp}" ${eval_sets}; do
        need_data "${x}" "${data_feats}/${x}/text"
        sets+=(--check "${data_feats}/${x}/text")
    done
    "${python}" pyscripts/label_list.py --train_text "${data_feats}/${train_set_sp}/text" "${sets[@]}" \
        ${label_list:+--label_list "${label_list}"} --out "${token_list}" \
        || stage_die "the labels are not usable (see above); fix the data or --label_list and re-run from stage 4"
    stage_done
}

# Stage 7: every evaluation set classified, with every class's probability: each job loads the model
# once for all the sets (pyscripts/cls_inference.py --also).
stage_infer() {
    stage_start infer "inference on ${eval_sets}with ${cls_exp}/${inference_model}"
    need_model
    run_inference "${eval_sets}" "${cls_exp}/${inference_tag}" prediction "text score" \
        pyscripts.cls_inference --batch_size "${inference_batch_size}" \
        --classification_train_config "${cls_exp}/config.yaml" \
        --classification_model_file "${cls_exp}/${inference_model}" --output_all_probabilities true
    stage_done
}

# Stage 8: accuracy, macro-F1, per-class table and confusion matrix of each evaluation set, then RESULTS.md.
stage_score() {
    local x dir
    stage_start score "scoring ${eval_sets}"
    for x in ${eval_sets}; do
        dir="${cls_exp}/${inference_tag}/${x}"
        need_from infer "${dir}/text" "${dir}/score"
        need_data "${x}" "${data_feats}/${x}/text"
        need_from token_list "${token_list}"
        "${python}" pyscripts/score_cls.py --ref "${data_feats}/${x}/text" --hyp "${dir}/text" --score "${dir}/score" \
            --token_list "${token_list}" --dataset "${x}" --out_dir "${dir}/scoring" \
            || stage_die "scoring ${x} failed (see above)"
    done
    stage_done_with_results pyscripts/cls_results.py
}

run_stages

log "Successfully finished. [elapsed=${SECONDS}s]"
