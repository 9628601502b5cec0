#!/usr/bin/env bash
# ESPnet2-style ASR recipe that needs no ESPnet checkout, no Kaldi and no SCTK: the stages, their
# numbers and the option names are those of ESPnet's egs2/TEMPLATE/asr1/asr.sh; the work is done by
# the Python entry points of the pip-installed ESPnet and by this template's helpers (utils/,
# pyscripts/). A corpus recipe's run.sh sets the data sets and configs and calls this script.
set -euo pipefail

recipe_name=asr.sh
. utils/recipe_lib.sh  # log, die, need, min, run_stage, stage_start/stage_done, run_training
SECONDS=0

# General configuration
stage=1                 # first stage to run
stop_stage=10000        # last stage to run
skip_data_prep=false    # skip stages 1-5 (data preparation, speed perturbation, formatting, filtering, tokens)
skip_train=false        # skip stages 6-11 (language model, feature statistics, ASR training)
skip_eval=false         # skip stages 12-13 (decoding and scoring)
skip_packing=false      # skip stage 14 (packing)
skip_upload=true        # skip stage 15 (upload; needs --hf_repo)
ngpu=auto               # GPUs for training: auto = 1 if torch sees a GPU, else 0 (CPU)
num_nodes=1             # nodes for training (several need a Slurm backend, see cmd.sh)
nj=4                    # parallel jobs for audio formatting and statistics
inference_nj=4          # parallel jobs for decoding
gpu_inference=false     # decode on GPUs
dumpdir=dump            # where formatted audio goes
expdir=exp              # where models and decodings go
python=python3          # the Python that has espnet and espnet_summarymixing

# Data preparation
local_data_opts=""      # options of local/data.sh
# Speed perturbation of the training set (e.g. "0.9 1.0 1.1"; empty: none)
speed_perturb_factors=""
# Audio
feats_type=raw          # raw: the model computes its features from the waveform
audio_format=flac       # flac or wav, in ${dumpdir}/raw
fs=16k                  # sampling rate everything is resampled to
min_wav_duration=0.1    # training utterances outside [min, max] seconds are dropped (stage 4)
max_wav_duration=20

# Tokens
token_type=bpe          # char, bpe or word
nbpe=30                 # sentencepiece vocabulary size
bpemode=unigram         # unigram or bpe
bpe_train_text=""       # default: the training set's text
oov="<unk>"
blank="<blank>"
sos_eos="<sos/eos>"
cleaner=none            # text cleaner of ESPnet's preprocessor
nlsyms_txt=none         # non-linguistic symbols, one per line

# Language model (stages 6-9)
use_lm=false            # train a language model and use it in decoding
lm_config=""
lm_args=""
lm_tag=""
lm_train_text=""        # default: the training set's text
lm_exp=""

# ASR model
asr_config=""           # training config (conf/tuning/*.yaml)
asr_args=""             # extra options of asr_train
asr_tag=""              # default: the config's file name + options
asr_exp=""              # default: ${expdir}/asr_${asr_tag}
asr_stats_dir=""        # default: ${expdir}/asr_stats_${feats_type}_${token_type}...
feats_normalize=global_mvn

# Decoding
inference_config=""     # decoding config (conf/decode_asr.yaml)
inference_args=""       # extra options of asr_inference
inference_tag=""        # default: decode_<config name>_<model name>
inference_asr_model=valid.acc.ave.pth
inference_lm=valid.loss.ave.pth

# Data sets (set by run.sh)
train_set=""
valid_set=""
test_sets=""
lang=noinfo

# Packing and upload
packed_model=model      # ${asr_exp}/${packed_model}.zip
export_onnx=false       # stage 14 also exports the model to ONNX (${asr_exp}/onnx) and packs it
onnx_opts=""            # options of python -m espnet_summarymixing.export, e.g. "--quantize int8 --streaming --chunk_size 16"
hf_repo=""              # user/name on the Hugging Face Hub

help_message=$(cat <<EOF
Usage: $0 --train_set <name> --valid_set <name> --test_sets "<name> ..." --asr_config <yaml> [options]

ESPnet-style ASR recipe. Stages:
   1 data preparation (local/data.sh)         9 (n-gram LM: not provided)
   2 speed perturbation                      10 feature statistics
   3 audio formatting into ${dumpdir}/raw        11 training (CPU, one or many GPUs, nodes)
   4 length filtering                        12 decoding (--inference_nj jobs)
   5 token list (char, word or bpe)          13 scoring (WER, CER, TER) and RESULTS.md
 6-8 language model (--use_lm true)          14 packing (${expdir}/.../model.zip; --export_onnx true: + ONNX)
                                             15 upload to the Hugging Face Hub (--hf_repo)
Stage groups that can be skipped (as in ESPnet's asr.sh), on top of --stage and --stop_stage:
  --skip_data_prep (${skip_data_prep}): skip stages 1-5 (data preparation, speed perturbation, formatting, filtering, tokens)
  --skip_train (${skip_train}): skip stages 6-11 (language model, feature statistics, ASR training)
  --skip_eval (${skip_eval}): skip stages 12-13 (decoding and scoring)
  --skip_packing (${skip_packing}): skip stage 14 (packing)
  --skip_upload (${skip_upload}): skip stage 15 (upload; needs --hf_repo)
Options (default):
  --stage (${stage}) --stop_stage (${stop_stage})
  --ngpu (${ngpu}) --num_nodes (${num_nodes}) --nj (${nj}) --inference_nj (${inference_nj})
  --gpu_inference (${gpu_inference}) --dumpdir (${dumpdir}) --expdir (${expdir}) --python (${python})
  --local_data_opts ("${local_data_opts}") --speed_perturb_factors ("${speed_perturb_factors}")
  --feats_type (${feats_type}) --audio_format (${audio_format}) --fs (${fs})
  --min_wav_duration (${min_wav_duration}) --max_wav_duration (${max_wav_duration})
  --token_type (${token_type}) --nbpe (${nbpe}) --bpemode (${bpemode}) --bpe_train_text ("${bpe_train_text}")
  --oov (${oov}) --blank (${blank}) --sos_eos (${sos_eos}) --cleaner (${cleaner}) --nlsyms_txt (${nlsyms_txt})
  --use_lm (${use_lm}) --lm_config ("${lm_config}") --lm_args ("${lm_args}") --lm_tag ("${lm_tag}")
  --lm_train_text ("${lm_train_text}") --lm_exp ("${lm_exp}")
  --asr_config ("${asr_config}") --asr_args ("${asr_args}") --asr_tag ("${asr_tag}") --asr_exp ("${asr_exp}")
  --asr_stats_dir ("${asr_stats_dir}") --feats_normalize (${feats_normalize})
  --inference_config ("${inference_config}") --inference_args ("${inference_args}")
  --inference_tag ("${inference_tag}") --inference_asr_model (${inference_asr_model}) --inference_lm (${inference_lm})
  --train_set ("${train_set}") --valid_set ("${valid_set}") --test_sets ("${test_sets}") --lang (${lang})
  --packed_model (${packed_model}) --hf_repo ("${hf_repo}") --export_onnx (${export_onnx}) --onnx_opts ("${onnx_opts}")
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
case "${token_type}" in char|bpe|word) ;; *) die "--token_type must be char, bpe or word, got '${token_type}'" ;; esac
case "${bpemode}" in unigram|bpe) ;; *) die "--bpemode must be unigram or bpe, got '${bpemode}'" ;; esac
case "${feats_type}" in raw) ;; *) die "--feats_type must be raw (the model computes its features), got '${feats_type}'" ;; esac
if [ -n "${asr_config}" ] && [ ! -f "${asr_config}" ]; then die "--asr_config ${asr_config}: no such file"; fi
if [ -n "${inference_config}" ] && [ ! -f "${inference_config}" ]; then die "--inference_config ${inference_config}: no such file"; fi
if "${use_lm}" && [ -n "${lm_config}" ] && [ ! -f "${lm_config}" ]; then die "--lm_config ${lm_config}: no such file"; fi
check_common_options nbpe  # utils/recipe_lib.sh; last, as it imports the Python stack

# ---------------------------------------------------------------------------------------------
# Derived names (as ESPnet's).
if [ -n "${speed_perturb_factors}" ]; then
    train_set_sp="${train_set}_sp"
else
    train_set_sp="${train_set}"
fi
data_feats=${dumpdir}/raw
[ -n "${bpe_train_text}" ] || bpe_train_text="${data_feats}/${train_set_sp}/text"
[ -n "${lm_train_text}" ] || lm_train_text="${data_feats}/${train_set_sp}/text"
token_listdir=data/${lang}_token_list
case "${token_type}" in
    bpe) bpedir="${token_listdir}/bpe_${bpemode}${nbpe}"; bpeprefix="${bpedir}/bpe"; bpemodel="${bpeprefix}.model"
         token_list="${bpedir}/tokens.txt" ;;
    char) bpemodel=none; token_list="${token_listdir}/char/tokens.txt" ;;
    word) bpemodel=none; token_list="${token_listdir}/word/tokens.txt" ;;
esac
if [ -z "${asr_tag}" ]; then
    if [ -n "${asr_config}" ]; then asr_tag="$(basename "${asr_config}" .yaml)_${feats_type}"; else asr_tag="train_${feats_type}"; fi
    asr_tag+="_${lang}_${token_type}"
    if [ "${token_type}" = bpe ]; then asr_tag+="${nbpe}"; fi
    if [ -n "${asr_args}" ]; then asr_tag+="$(echo "${asr_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')"; fi
    if [ -n "${speed_perturb_factors}" ]; then asr_tag+="_sp"; fi
fi
if [ -z "${asr_stats_dir}" ]; then
    asr_stats_dir="${expdir}/asr_stats_${feats_type}_${lang}_${token_type}"
    if [ "${token_type}" = bpe ]; then asr_stats_dir+="${nbpe}"; fi
    if [ -n "${speed_perturb_factors}" ]; then asr_stats_dir+="_sp"; fi
fi
[ -n "${asr_exp}" ] || asr_exp="${expdir}/asr_${asr_tag}"
if [ -z "${lm_tag}" ]; then
    if [ -n "${lm_config}" ]; then lm_tag="$(basename "${lm_config}" .yaml)"; else lm_tag=train; fi
    lm_tag+="_${lang}_${token_type}"
fi
[ -n "${lm_exp}" ] || lm_exp="${expdir}/lm_${lm_tag}"
lm_stats_dir="${expdir}/lm_stats_${lang}_${token_type}"
if [ -z "${inference_tag}" ]; then
    # decode_<config name>...: the config name, with "decode_" put in front when it lacks it
    if [ -n "${inference_config}" ]; then inference_tag="$(basename "${inference_config}" .yaml)"; else inference_tag=default; fi
    [[ "${inference_tag}" == decode* ]] || inference_tag="decode_${inference_tag}"
    if [ -n "${inference_args}" ]; then inference_tag+="$(echo "${inference_args}" | sed -e 's/--/_/g' -e 's/[ |=]//g')"; fi
    if "${use_lm}"; then inference_tag+="_lm_$(basename "${lm_exp}")_$(echo "${inference_lm}" | sed -e 's/\//_/g' -e 's/\.[^.]*$//g')"; fi
    inference_tag+="_asr_model_$(echo "${inference_asr_model}" | sed -e 's/\//_/g' -e 's/\.[^.]*$//g')"
fi

# Common options of ESPnet's text preprocessing for the ASR and LM tasks.
token_opts=(--token_type "${token_type}" --token_list "${token_list}" --non_linguistic_symbols "${nlsyms_txt}"
            --cleaner "${cleaner}" --g2p none)
if [ "${token_type}" = bpe ]; then token_opts+=(--bpemodel "${bpemodel}"); fi

stage_times_dir=${asr_exp}  # stage_done records each stage's seconds in ${asr_exp}/stage_times.tsv

# The statistics stages 6 (LM) and 10 (ASR): ESPnet's collect_stats run by ${train_cmd} in parallel
# jobs (at most --nj; no more than the training or validation set has keys), each over one part of the
# keys of TRAIN_KEYS and VALID_KEYS (split by pyscripts/data_dir.py split), then aggregated into DIR.
# DIR/{train,valid}/text_shape.${token_type} get the token count appended (for batch bins).
#     collect_stats STAGE DIR TRAIN_KEYS VALID_KEYS MODULE [ARGS...]   (ARGS: MODULE's data and config options)
collect_stats() {
    local stage_no=$1 dir=$2 train_keys=$3 valid_keys=$4 module=$5 logdir=$2/logdir n i x ntok dirs=()
    shift 5
    n=$(min "${nj}" "$(wc -l < "${train_keys}")" "$(wc -l < "${valid_keys}")")
    [ "${n}" -ge 1 ] || die "stage ${stage_no}: ${train_keys} or ${valid_keys} is empty"
    mkdir -p "${logdir}"
    split_jobs "${train_keys}" "${logdir}/train" "${n}"
    split_jobs "${valid_keys}" "${logdir}/valid" "${n}"
    log "collecting statistics in ${n} jobs, logs in ${logdir}/stats.*.log"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${n}" "${logdir}/stats.JOB.log" \
        "${python}" -m "${module}" --collect_stats true --use_preprocessor true "${token_opts[@]}" \
            --train_shape_file "${logdir}/train/keys.JOB.scp" --valid_shape_file "${logdir}/valid/keys.JOB.scp" \
            --output_dir "${logdir}/stats.JOB" "$@" \
        || die "stage ${stage_no}: statistics failed, see ${logdir}/stats.*.log"
    aggregate_stats "${dir}" "${n}"
    ntok=$(wc -l < "${token_list}")
    for x in train valid; do
        awk -v N="${ntok}" '{ print $0 "," N }' "${dir}/${x}/text_shape" > "${dir}/${x}/text_shape.${token_type}"
    done
}

# ---------------------------------------------------------------------------------------------
if ! "${skip_data_prep}"; then
if run_stage 1; then
    stage_start 1 "data preparation: local/data.sh ${local_data_opts}"
    [ -x local/data.sh ] || die "local/data.sh not found or not executable in $(pwd)"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    for x in "${train_set}" "${valid_set}" ${test_sets}; do
        "${python}" pyscripts/data_dir.py validate "data/${x}" --need wav.scp,text,utt2spk \
            || die "stage 1: data/${x} is not a valid data directory (see above)"
    done
    stage_done
fi

if run_stage 2; then
    if [ -n "${speed_perturb_factors}" ]; then
        stage_start 2 "speed perturbation of data/${train_set} by ${speed_perturb_factors}"
        need "stage 1 (data preparation) writes it" "data/${train_set}/wav.scp"
        # shellcheck disable=SC2086
        "${python}" pyscripts/data_dir.py speed_perturb "data/${train_set}" "data/${train_set_sp}" \
            --factors ${speed_perturb_factors}
        stage_done
    else
        log "Stage 2: no speed perturbation (--speed_perturb_factors is empty): skipped"
    fi
fi

if run_stage 3; then
    stage_start 3 "formatting audio into ${data_feats} (${audio_format}, ${fs_hz} Hz)"
    # A test set that is also the validation set (ESPnet's habit) is formatted once, into org/.
    for x in $(printf '%s\n' "${train_set_sp}" "${valid_set}" ${test_sets} | awk '!seen[$0]++'); do
        if [ "${x}" = "${train_set_sp}" ] || [ "${x}" = "${valid_set}" ]; then _out="${data_feats}/org/${x}"; else _out="${data_feats}/${x}"; fi
        need "stage 1 (or 2 for ${train_set_sp}) writes it" "data/${x}/wav.scp"
        "${python}" pyscripts/format_audio.py --data "data/${x}" --out "${_out}" --fs "${fs_hz}" \
            --audio_format "${audio_format}" --nj "${nj}" || die "stage 3: formatting data/${x} failed (see above)"
    done
    stage_done
fi

if run_stage 4; then
    stage_start 4 "removing training utterances shorter than ${min_wav_duration} s or longer than ${max_wav_duration} s"
    for x in "${train_set_sp}" "${valid_set}"; do
        need "stage 3 (audio formatting) writes it" "${data_feats}/org/${x}/utt2num_samples"
        "${python}" pyscripts/data_dir.py filter "${data_feats}/org/${x}" "${data_feats}/${x}" --fs "${fs_hz}" \
            --min_seconds "${min_wav_duration}" --max_seconds "${max_wav_duration}"
    done
    stage_done
fi

if run_stage 5; then
    stage_start 5 "token list (${token_type}) from ${bpe_train_text}"
    need "stage 4 (length filtering) writes it" "${bpe_train_text}"
    mkdir -p "$(dirname "${token_list}")"
    _tokenizer=(--token_type "${token_type}")
    if [ "${token_type}" = bpe ]; then
        _nlsyms=""
        [ "${nlsyms_txt}" != none ] && _nlsyms=$(paste -s -d, "${nlsyms_txt}")
        "${python}" pyscripts/spm_train.py --text "${bpe_train_text}" --vocab_size "${nbpe}" \
            --model_type "${bpemode}" --model_prefix "${bpeprefix}" --user_defined_symbols "${_nlsyms}"
        _tokenizer+=(--bpemodel "${bpemodel}")
    fi
    # The vocabulary of the training text, with <blank> first, <unk> second and <sos/eos> last.
    _log="$(dirname "${token_list}")/tokenize.log"
    "${python}" -m espnet2.bin.tokenize_text "${_tokenizer[@]}" \
        --input "${bpe_train_text}" --output "${token_list}" --field 2- --cleaner "${cleaner}" --g2p none \
        --non_linguistic_symbols "${nlsyms_txt}" --write_vocabulary true \
        --add_symbol "${blank}:0" --add_symbol "${oov}:1" --add_symbol "${sos_eos}:-1" 2> "${_log}" \
        || die "stage 5: tokenize_text failed, see ${_log}"
    log "${token_list}: $(wc -l < "${token_list}") tokens"
    stage_done
fi
fi  # skip_data_prep

if ! "${skip_train}"; then
if "${use_lm}"; then
    if run_stage 6; then
        stage_start 6 "LM statistics from ${lm_train_text}"
        need "stages 4-5 write it" "${lm_train_text}" "${data_feats}/${valid_set}/text" "${token_list}"
        # shellcheck disable=SC2086
        collect_stats 6 "${lm_stats_dir}" "${lm_train_text}" "${data_feats}/${valid_set}/text" espnet2.bin.lm_train \
            --train_data_path_and_name_and_type "${lm_train_text},text,text" \
            --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
            ${lm_config:+--config "${lm_config}"} ${lm_args}
        stage_done
    fi
    if run_stage 7; then
        stage_start 7 "LM training: ${lm_exp}"
        need "stage 6 (LM statistics) writes it" "${lm_stats_dir}/train/text_shape.${token_type}"
        mkdir -p "${lm_exp}"
        # shellcheck disable=SC2086
        "${python}" -m espnet2.bin.launch --cmd "${cuda_cmd} --name lm_train" --log "${lm_exp}/train.log" \
            --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${lm_exp}/.dist_init_" \
            --multiprocessing_distributed true -- \
            "${python}" pyscripts/train.py lm --use_preprocessor true "${token_opts[@]}" \
                --train_data_path_and_name_and_type "${lm_train_text},text,text" \
                --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
                --train_shape_file "${lm_stats_dir}/train/text_shape.${token_type}" \
                --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
                --fold_length 150 --resume true --output_dir "${lm_exp}" \
                --use_tensorboard false --use_wandb false ${lm_config:+--config "${lm_config}"} ${lm_args} \
            || die "stage 7: LM training failed, see ${lm_exp}/train.log"
        stage_done
    fi
    if run_stage 8; then
        stage_start 8 "LM perplexity on ${test_sets}"
        for x in ${test_sets}; do
            "${python}" -m espnet2.bin.lm_calc_perplexity --ngpu "$([ "${ngpu}" -gt 0 ] && echo 1 || echo 0)" \
                --data_path_and_name_and_type "${data_feats}/${x}/text,text,text" \
                --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${inference_lm}" \
                --output_dir "${lm_exp}/perplexity_${x}" --log_level WARNING
            log "${x}: perplexity $(cat "${lm_exp}/perplexity_${x}/ppl")"
        done
        stage_done
    fi
fi

if run_stage 10; then
    stage_start 10 "feature statistics: ${asr_stats_dir}"
    [ -n "${asr_config}" ] || die "--asr_config is required from stage 10 on"
    need "stages 4-5 write it" "${data_feats}/${train_set_sp}/wav.scp" "${data_feats}/${valid_set}/wav.scp" "${token_list}"
    # shellcheck disable=SC2086
    collect_stats 10 "${asr_stats_dir}" "${data_feats}/${train_set_sp}/wav.scp" "${data_feats}/${valid_set}/wav.scp" \
        espnet2.bin.asr_train \
        --train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/wav.scp,speech,sound" \
        --train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/text,text,text" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
        --config "${asr_config}" --frontend_conf fs="${fs}" ${asr_args}
    stage_done
fi

if run_stage 11; then
    stage_start 11 "training: ${asr_exp} (${ngpu} GPU(s), ${num_nodes} node(s))"
    [ -n "${asr_config}" ] || die "--asr_config is required from stage 10 on"
    need "stage 10 (feature statistics) writes it" "${asr_stats_dir}/train/speech_shape" "${asr_stats_dir}/train/text_shape.${token_type}"
    _opts=()
    if [ "${feats_normalize}" = global_mvn ]; then
        # On the command line, not in the YAML: the YAML is also read by stage 10, which writes this file.
        _opts+=(--normalize global_mvn --normalize_conf "stats_file=${asr_stats_dir}/train/feats_stats.npz")
    elif [ "${feats_normalize}" = none ]; then
        _opts+=(--normalize none)
    else
        _opts+=(--normalize utterance_mvn)
    fi
    mkdir -p "${asr_exp}"
    echo "${run_args}" > "${asr_exp}/run_command.txt"
    # shellcheck disable=SC2086
    run_training "${asr_exp}" "$(max_epoch_of "${asr_config}" "${asr_args}")" \
    "${python}" -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${asr_exp}")" --log "${asr_exp}/train.log" \
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_" \
        --multiprocessing_distributed true -- \
        "${python}" pyscripts/train.py asr --use_preprocessor true "${token_opts[@]}" \
            --train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/wav.scp,speech,sound" \
            --train_data_path_and_name_and_type "${data_feats}/${train_set_sp}/text,text,text" \
            --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/wav.scp,speech,sound" \
            --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
            --train_shape_file "${asr_stats_dir}/train/speech_shape" \
            --train_shape_file "${asr_stats_dir}/train/text_shape.${token_type}" \
            --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
            --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
            --fold_length 80000 --fold_length 150 --resume true --output_dir "${asr_exp}" \
            --frontend_conf fs="${fs}" --use_tensorboard false --use_wandb false \
            --config "${asr_config}" "${_opts[@]}" ${asr_args} \
        || die "stage 11: training failed, see ${asr_exp}/train.log (re-running stage 11 resumes from the last finished epoch)"
    stage_done
fi
fi  # skip_train

if ! "${skip_eval}"; then
if run_stage 12; then
    stage_start 12 "decoding ${test_sets} with ${asr_exp}/${inference_asr_model}"
    need "stage 11 (training) writes it" "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}"
    if "${gpu_inference}"; then _cmd="${cuda_cmd} --gpu 1"; _ngpu=1; else _cmd="${decode_cmd}"; _ngpu=0; fi
    _lm_opts=()
    "${use_lm}" && _lm_opts=(--lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}")
    for x in ${test_sets}; do
        _data="${data_feats}/${x}"
        _dir="${asr_exp}/${inference_tag}/${x}"
        _logdir="${_dir}/logdir"
        need "stage 3 (audio formatting) writes it" "${_data}/wav.scp"
        rm -rf "${_logdir}"
        _n=$(min "${inference_nj}" "$(wc -l < "${_data}/wav.scp")")
        [ "${_n}" -ge 1 ] || die "stage 12: ${_data}/wav.scp is empty"
        "${python}" pyscripts/data_dir.py split "${_data}/wav.scp" "${_logdir}" --nj "${_n}"
        log "decoding ${x}: $(wc -l < "${_data}/wav.scp") utterances in ${_n} jobs, logs in ${_logdir}/asr_inference.*.log"
        # shellcheck disable=SC2086
        ${_cmd} JOB=1:"${_n}" "${_logdir}/asr_inference.JOB.log" \
            "${python}" -m espnet2.bin.asr_inference --batch_size 1 --ngpu "${_ngpu}" \
                --data_path_and_name_and_type "${_data}/wav.scp,speech,sound" --key_file "${_logdir}/keys.JOB.scp" \
                --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/${inference_asr_model}" \
                --output_dir "${_logdir}/output.JOB" ${inference_config:+--config "${inference_config}"} \
                "${_lm_opts[@]}" ${inference_args} \
            || die "stage 12: decoding ${x} failed, see ${_logdir}/asr_inference.*.log"
        for f in token token_int score text; do
            for i in $(seq "${_n}"); do
                if [ -f "${_logdir}/output.${i}/1best_recog/${f}" ]; then cat "${_logdir}/output.${i}/1best_recog/${f}"; fi
            done | LC_ALL=C sort -k1,1 > "${_dir}/${f}"
        done
        log "${_dir}/text: $(wc -l < "${_dir}/text") hypotheses"
    done
    stage_done
fi

if run_stage 13; then
    stage_start 13 "scoring ${test_sets}"
    _metrics="wer cer"
    [ "${token_type}" = bpe ] && _metrics+=" ter"
    for x in ${test_sets}; do
        _dir="${asr_exp}/${inference_tag}/${x}"
        need "stage 12 (decoding) writes it" "${_dir}/text" "${data_feats}/${x}/text"
        for m in ${_metrics}; do
            "${python}" pyscripts/score.py --ref "${data_feats}/${x}/text" --hyp "${_dir}/text" --metric "${m}" \
                $([ "${m}" = ter ] && echo "--bpemodel ${bpemodel}") --dataset "${inference_tag}/${x}" \
                --out_dir "${_dir}/score_${m}" > /dev/null
        done
    done
    stage_done  # first, so that RESULTS.md's stage table has this stage too
    "${python}" pyscripts/collect_results.py --exp_dir "${asr_exp}" --out "${asr_exp}/RESULTS.md"
    cat "${asr_exp}/RESULTS.md"
fi
fi  # skip_eval

if ! "${skip_packing}" && run_stage 14; then
    stage_start 14 "packing ${asr_exp}/${packed_model}.zip"
    need "stage 11 (training) writes it" "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}"
    _opts=()
    [ -n "${inference_config}" ] && _opts+=(--inference_config "${inference_config}")
    [ -f "${asr_exp}/RESULTS.md" ] && _opts+=(--results "${asr_exp}/RESULTS.md")
    if "${export_onnx}"; then
        log "exporting to ONNX: ${asr_exp}/onnx ${onnx_opts}"
        # shellcheck disable=SC2086
        "${python}" -m espnet_summarymixing.export --asr_train_config "${asr_exp}/config.yaml" \
            --asr_model_file "${asr_exp}/${inference_asr_model}" --out "${asr_exp}/onnx" ${onnx_opts} \
            || die "stage 14: ONNX export failed (see above); the model is not packed"
        _opts+=(--onnx_dir "${asr_exp}/onnx")
    fi
    "${python}" -m espnet_summarymixing.pack --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_asr_model}" "${_opts[@]}" \
        --training_data "$(basename "$(dirname "$(pwd)")") ${train_set_sp}" \
        --outpath "${asr_exp}/${packed_model}.zip"
    stage_done
fi

if ! "${skip_upload}" && run_stage 15; then
    stage_start 15 "uploading ${asr_exp}/${packed_model}.zip to the Hugging Face Hub"
    [ -n "${hf_repo}" ] || die "stage 15 needs --hf_repo user/name"
    need "stage 14 (packing) writes it" "${asr_exp}/${packed_model}.zip"
    "${python}" -m espnet_summarymixing.upload --model "${asr_exp}/${packed_model}.zip" --repo "${hf_repo}"
    stage_done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
