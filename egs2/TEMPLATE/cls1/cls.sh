#!/usr/bin/env bash
# ESPnet2-style classification recipe (keyword spotting, spoken digits, sound events): the stages,
# their numbers and the option names are those of ESPnet's egs2/TEMPLATE/cls1/cls.sh; the work is
# done by the pip-installed ESPnet (espnet2.bin.cls_train / cls_inference) and by the helpers this
# template shares with asr1 (utils/, pyscripts/). A corpus recipe's run.sh sets the data sets and
# configs and calls this script. Data directories hold wav.scp, utt2spk and text = "<utt> <label>".
set -euo pipefail

recipe_name=cls.sh
. utils/recipe_lib.sh  # log, die, need, min, run_stage, stage_start/stage_done, run_training
SECONDS=0

# General configuration
stage=1                 # first stage to run
stop_stage=10000        # last stage to run
skip_data_prep=false    # skip stages 1-4 (data preparation, audio formatting, length filtering, label list)
skip_train=false        # skip stages 5-6 (statistics, training)
skip_eval=false         # skip stages 7-8 (inference and scoring)
skip_packing=false      # skip stage 9 (packing)
skip_upload=true        # skip stage 10 (upload; needs --hf_repo)
ngpu=auto               # GPUs for training: auto = 1 if torch sees a GPU, else 0 (CPU)
num_nodes=1             # nodes for training (several need a Slurm backend, see cmd.sh)
nj=4                    # parallel jobs for audio formatting and statistics
inference_nj=4          # parallel jobs for inference
gpu_inference=false     # classify on GPUs
dumpdir=dump            # where formatted audio goes
expdir=exp              # where models and predictions go
python=python3          # the Python that has espnet and espnet_summarymixing

# Data preparation
local_data_opts=""      # options of local/data.sh
speed_perturb_factors="" # speed perturbation of the training set (e.g. "0.9 1.0 1.1"; empty: none)
# Audio
audio_format=flac       # flac or wav, in ${dumpdir}/raw
fs=16k                  # sampling rate everything is resampled to
min_wav_duration=0.1    # training/validation clips outside [min, max] seconds are dropped (stage 3)
max_wav_duration=20

# Labels
label_list=""           # a fixed label list (one per line, in class-id order); default: the training labels, sorted

# Classification model
cls_config=""           # training config (conf/train_cls_*.yaml)
cls_args=""             # extra options of cls_train
cls_tag=""              # default: the config's file name + options
cls_exp=""              # default: ${expdir}/cls_${cls_tag}
cls_stats_dir=""        # default: ${expdir}/cls_stats_${fs}
feats_normalize=global_mvn

# Inference
inference_model=valid.acc.best.pth
inference_tag=""        # default: inference_<model name>

# Data sets (set by run.sh)
train_set=""
valid_set=""
test_sets=""

# Packing and upload
packed_model=model      # ${cls_exp}/${packed_model}.zip
hf_repo=""              # user/name on the Hugging Face Hub

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
  --stage (${stage}) --stop_stage (${stop_stage})
  --ngpu (${ngpu}) --num_nodes (${num_nodes}) --nj (${nj}) --inference_nj (${inference_nj})
  --gpu_inference (${gpu_inference}) --dumpdir (${dumpdir}) --expdir (${expdir}) --python (${python})
  --local_data_opts ("${local_data_opts}") --speed_perturb_factors ("${speed_perturb_factors}")
  --audio_format (${audio_format}) --fs (${fs}) --min_wav_duration (${min_wav_duration}) --max_wav_duration (${max_wav_duration})
  --label_list ("${label_list}")
  --cls_config ("${cls_config}") --cls_args ("${cls_args}") --cls_tag ("${cls_tag}") --cls_exp ("${cls_exp}")
  --cls_stats_dir ("${cls_stats_dir}") --feats_normalize (${feats_normalize})
  --inference_model (${inference_model}) --inference_tag ("${inference_tag}")
  --train_set ("${train_set}") --valid_set ("${valid_set}") --test_sets ("${test_sets}")
  --packed_model (${packed_model}) --hf_repo ("${hf_repo}")
Jobs run through \${train_cmd}, \${cuda_cmd} and \${decode_cmd} of cmd.sh (local machine or Slurm).
EOF
)

log "$0 $*"
run_args=$(printf '%q ' "$0" "$@")
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: unexpected argument(s): $*"; exit 2; }

. ./path.sh
. ./cmd.sh

# ---------------------------------------------------------------------------------------------
# Check the options before anything runs.
if [ -n "${cls_config}" ] && [ ! -f "${cls_config}" ]; then die "--cls_config ${cls_config}: no such file"; fi
if [ -n "${label_list}" ] && [ ! -f "${label_list}" ]; then die "--label_list ${label_list}: no such file"; fi
check_common_options  # utils/recipe_lib.sh; last, as it imports the Python stack

# ---------------------------------------------------------------------------------------------
# Derived names (as ESPnet's).
if [ -n "${speed_perturb_factors}" ]; then train_set_sp="${train_set}_sp"; else train_set_sp="${train_set}"; fi
data_feats=${dumpdir}/raw
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
stage_times_dir=${cls_exp}  # stage_done records each stage's seconds in ${cls_exp}/stage_times.tsv
eval_sets=$(printf '%s\n' "${valid_set}" ${test_sets} | awk '!seen[$0]++' | tr '\n' ' ')
label_opts=(--token_list "${token_list}" --token_type word)

# ---------------------------------------------------------------------------------------------
if ! "${skip_data_prep}"; then
if run_stage 1; then
    stage_start 1 "data preparation: local/data.sh ${local_data_opts}"
    [ -x local/data.sh ] || die "local/data.sh not found or not executable in $(pwd)"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts} || die "stage 1: local/data.sh failed (see above)"
    for x in "${train_set}" ${eval_sets}; do
        "${python}" pyscripts/data_dir.py validate "data/${x}" --need wav.scp,text,utt2spk \
            || die "stage 1: data/${x} is not a valid data directory (see above)"
    done
    stage_done
fi

if run_stage 2; then
    stage_start 2 "formatting audio into ${data_feats} (${audio_format}, ${fs_hz} Hz)"
    if [ -n "${speed_perturb_factors}" ]; then
        need "stage 1 (data preparation) writes it" "data/${train_set}/wav.scp"
        # shellcheck disable=SC2086
        "${python}" pyscripts/data_dir.py speed_perturb "data/${train_set}" "data/${train_set_sp}" \
            --factors ${speed_perturb_factors}
    fi
    # The sets that training reads are length-filtered in stage 3, from org/; the others are kept whole.
    for x in $(printf '%s\n' "${train_set_sp}" ${eval_sets} | awk '!seen[$0]++'); do
        if [ "${x}" = "${train_set_sp}" ] || [ "${x}" = "${valid_set}" ]; then _out="${data_feats}/org/${x}"; else _out="${data_feats}/${x}"; fi
        need "stage 1 writes it" "data/${x}/wav.scp"
        "${python}" pyscripts/format_audio.py --data "data/${x}" --out "${_out}" --fs "${fs_hz}" \
            --audio_format "${audio_format}" --nj "${nj}" || die "stage 2: formatting data/${x} failed (see above)"
    done
    stage_done
fi

if run_stage 3; then
    stage_start 3 "removing training and validation clips shorter than ${min_wav_duration} s or longer than ${max_wav_duration} s"
    for x in "${train_set_sp}" "${valid_set}"; do
        need "stage 2 (audio formatting) writes it" "${data_feats}/org/${x}/utt2num_samples"
        "${python}" pyscripts/data_dir.py filter "${data_feats}/org/${x}" "${data_feats}/${x}" --fs "${fs_hz}" \
            --min_seconds "${min_wav_duration}" --max_seconds "${max_wav_duration}" \
            || die "stage 3: filtering ${data_feats}/org/${x} failed (see above)"
    done
    stage_done
fi

if run_stage 4; then
    stage_start 4 "label list ${token_list}"
    _sets=()
    for x in "${train_set_sp}" ${eval_sets}; do
        need "stages 2-3 write it" "${data_feats}/${x}/text"
        _sets+=(--check "${data_feats}/${x}/text")
    done
    "${python}" pyscripts/label_list.py --train_text "${data_feats}/${train_set_sp}/text" "${_sets[@]}" \
        ${label_list:+--label_list "${label_list}"} --out "${token_list}" \
        || die "stage 4: the labels are not usable (see above); fix the data or --label_list and re-run from stage 4"
    stage_done
fi
fi  # skip_data_prep

if ! "${skip_train}"; then
_train_data=(--train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/wav.scp,speech,sound"
             --train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/text,label,text"
             --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/wav.scp,speech,sound"
             --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,label,text")
if run_stage 5; then
    stage_start 5 "feature statistics: ${cls_stats_dir}"
    [ -n "${cls_config}" ] || die "--cls_config is required from stage 5 on"
    need "stages 2-4 write it" "${data_feats}/${train_set_sp}/wav.scp" "${data_feats}/${valid_set}/wav.scp" "${token_list}"
    _logdir=${cls_stats_dir}/logdir
    _n=$(min "${nj}" "$(wc -l < "${data_feats}/${train_set_sp}/wav.scp")" "$(wc -l < "${data_feats}/${valid_set}/wav.scp")")
    [ "${_n}" -ge 1 ] || die "stage 5: ${data_feats}/${train_set_sp}/wav.scp or ${data_feats}/${valid_set}/wav.scp is empty"
    mkdir -p "${_logdir}"
    split_jobs "${data_feats}/${train_set_sp}/wav.scp" "${_logdir}/train" "${_n}"
    split_jobs "${data_feats}/${valid_set}/wav.scp" "${_logdir}/valid" "${_n}"
    log "collecting statistics in ${_n} jobs, logs in ${_logdir}/stats.*.log"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${_n}" "${_logdir}/stats.JOB.log" \
        "${python}" -m espnet2.bin.cls_train --collect_stats true --use_preprocessor true "${label_opts[@]}" \
            "${_train_data[@]}" --train_shape_file "${_logdir}/train/keys.JOB.scp" \
            --valid_shape_file "${_logdir}/valid/keys.JOB.scp" --output_dir "${_logdir}/stats.JOB" \
            --config "${cls_config}" --frontend_conf fs="${fs}" ${cls_args} \
        || die "stage 5: statistics failed, see ${_logdir}/stats.*.log"
    aggregate_stats "${cls_stats_dir}" "${_n}"
    stage_done
fi

if run_stage 6; then
    stage_start 6 "training: ${cls_exp} (${ngpu} GPU(s), ${num_nodes} node(s))"
    [ -n "${cls_config}" ] || die "--cls_config is required from stage 5 on"
    need "stage 5 (feature statistics) writes it" "${cls_stats_dir}/train/speech_shape" "${cls_stats_dir}/train/label_shape"
    _opts=()
    case "${feats_normalize}" in
        global_mvn) _opts+=(--normalize global_mvn --normalize_conf "stats_file=${cls_stats_dir}/train/feats_stats.npz") ;;
        none) _opts+=(--normalize none) ;;
        *) _opts+=(--normalize utterance_mvn) ;;
    esac
    mkdir -p "${cls_exp}"
    echo "${run_args}" > "${cls_exp}/run_command.txt"
    # shellcheck disable=SC2086
    run_training "${cls_exp}" "$(max_epoch_of "${cls_config}" "${cls_args}")" \
    "${python}" -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${cls_exp}")" --log "${cls_exp}/train.log" \
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${cls_exp}/.dist_init_" \
        --multiprocessing_distributed true -- \
        "${python}" pyscripts/train.py cls --use_preprocessor true "${label_opts[@]}" "${_train_data[@]}" \
            --train_shape_file "${cls_stats_dir}/train/speech_shape" --train_shape_file "${cls_stats_dir}/train/label_shape" \
            --valid_shape_file "${cls_stats_dir}/valid/speech_shape" --valid_shape_file "${cls_stats_dir}/valid/label_shape" \
            --fold_length 80000 --fold_length 1 --resume true --output_dir "${cls_exp}" \
            --frontend_conf fs="${fs}" --use_tensorboard false --use_wandb false \
            --config "${cls_config}" "${_opts[@]}" ${cls_args} \
        || die "stage 6: training failed, see ${cls_exp}/train.log (re-running stage 6 resumes from the last finished epoch)"
    stage_done
fi
fi  # skip_train

if ! "${skip_eval}"; then
if run_stage 7; then
    stage_start 7 "inference on ${eval_sets}with ${cls_exp}/${inference_model}"
    need "stage 6 (training) writes it" "${cls_exp}/config.yaml" "${cls_exp}/${inference_model}"
    if "${gpu_inference}"; then _cmd="${cuda_cmd} --gpu 1"; _ngpu=1; else _cmd="${decode_cmd}"; _ngpu=0; fi
    for x in ${eval_sets}; do
        _data="${data_feats}/${x}"
        _dir="${cls_exp}/${inference_tag}/${x}"
        _logdir="${_dir}/logdir"
        need "stage 2 (audio formatting) writes it" "${_data}/wav.scp"
        rm -rf "${_logdir}"
        _n=$(min "${inference_nj}" "$(wc -l < "${_data}/wav.scp")")
        [ "${_n}" -ge 1 ] || die "stage 7: ${_data}/wav.scp is empty"
        split_jobs "${_data}/wav.scp" "${_logdir}" "${_n}"
        log "classifying ${x}: $(wc -l < "${_data}/wav.scp") clips in ${_n} jobs, logs in ${_logdir}/cls_inference.*.log"
        # shellcheck disable=SC2086
        ${_cmd} JOB=1:"${_n}" "${_logdir}/cls_inference.JOB.log" \
            "${python}" -m espnet2.bin.cls_inference --batch_size 1 --ngpu "${_ngpu}" \
                --data_path_and_name_and_type "${_data}/wav.scp,speech,sound" --key_file "${_logdir}/keys.JOB.scp" \
                --classification_train_config "${cls_exp}/config.yaml" \
                --classification_model_file "${cls_exp}/${inference_model}" \
                --output_dir "${_logdir}/output.JOB" --output_all_probabilities true \
            || die "stage 7: inference on ${x} failed, see ${_logdir}/cls_inference.*.log"
        for f in text score; do
            for i in $(seq "${_n}"); do
                if [ -f "${_logdir}/output.${i}/prediction/${f}" ]; then cat "${_logdir}/output.${i}/prediction/${f}"; fi
            done | LC_ALL=C sort -k1,1 > "${_dir}/${f}"
        done
        log "${_dir}/text: $(wc -l < "${_dir}/text") predictions"
    done
    stage_done
fi

if run_stage 8; then
    stage_start 8 "scoring ${eval_sets}"
    for x in ${eval_sets}; do
        _dir="${cls_exp}/${inference_tag}/${x}"
        need "stage 7 (inference) writes it" "${_dir}/text" "${_dir}/score"
        need "stage 4 (label list) writes it" "${token_list}"
        "${python}" pyscripts/score_cls.py --ref "${data_feats}/${x}/text" --hyp "${_dir}/text" --score "${_dir}/score" \
            --token_list "${token_list}" --dataset "${x}" --out_dir "${_dir}/scoring" \
            || die "stage 8: scoring ${x} failed (see above)"
    done
    stage_done  # first, so that RESULTS.md's stage table has this stage too
    "${python}" pyscripts/cls_results.py --exp_dir "${cls_exp}" --out "${cls_exp}/RESULTS.md"
    cat "${cls_exp}/RESULTS.md"
fi
fi  # skip_eval

if ! "${skip_packing}" && run_stage 9; then
    stage_start 9 "packing ${cls_exp}/${packed_model}.zip"
    need "stage 6 (training) writes it" "${cls_exp}/config.yaml" "${cls_exp}/${inference_model}"
    _opts=()
    [ -f "${cls_exp}/RESULTS.md" ] && _opts+=(--results "${cls_exp}/RESULTS.md")
    "${python}" -m espnet_summarymixing.pack --classification_train_config "${cls_exp}/config.yaml" \
        --classification_model_file "${cls_exp}/${inference_model}" "${_opts[@]}" \
        --training_data "$(basename "$(dirname "$(pwd)")") ${train_set_sp}" \
        --outpath "${cls_exp}/${packed_model}.zip" || die "stage 9: packing failed (see above)"
    stage_done
fi

if ! "${skip_upload}" && run_stage 10; then
    stage_start 10 "uploading ${cls_exp}/${packed_model}.zip to the Hugging Face Hub"
    [ -n "${hf_repo}" ] || die "stage 10 needs --hf_repo user/name"
    need "stage 9 (packing) writes it" "${cls_exp}/${packed_model}.zip"
    "${python}" -m espnet_summarymixing.upload --model "${cls_exp}/${packed_model}.zip" --repo "${hf_repo}"
    stage_done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
