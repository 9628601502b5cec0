#!/usr/bin/env bash
# ESPnet2-style ASR recipe that needs no ESPnet checkout, no Kaldi and no SCTK: the stages, their
# numbers and the option names are those of ESPnet's egs2/TEMPLATE/asr1/asr.sh; the work is done by
# the Python entry points of the pip-installed ESPnet and by this template's helpers (utils/,
# pyscripts/). A corpus recipe's run.sh sets the data sets and configs and calls this script.
set -euo pipefail

recipe_name=asr.sh
. utils/recipe_lib.sh     # log, die, need_from, run_stage, stage_start/stage_done, collect_stats, launch_training...
. utils/recipe_stages.sh  # the options and stages asr.sh shares with cls.sh
SECONDS=0

# General configuration. The options cls.sh has too (stage, stop_stage, ngpu, num_nodes, nj, inference_nj,
# gpu_inference, dumpdir, expdir, python, local_data_opts, speed_perturb_factors, audio_format, fs,
# min_wav_duration, max_wav_duration, feats_normalize, train_set, valid_set, test_sets, packed_model,
# hf_repo) and their defaults are in utils/recipe_stages.sh.
common_options
skip_data_prep=false    # skip stages 1-5 (data preparation, speed perturbation, formatting, filtering, tokens)
skip_train=false        # skip stages 6-11 (language model, feature statistics, ASR training)
skip_eval=false         # skip stages 12-13 (decoding and scoring)
skip_packing=false      # skip stage 14 (packing)
skip_upload=true        # skip stage 15 (upload; needs --hf_repo)
# The stages each --skip_* option skips, in order: "N step" or, for this script's own steps, "N step (name)".
# Stage N runs the function stage_<step>: utils/recipe_stages.sh's for the shared steps, below for the others.
stage_group skip_data_prep "1 data" "2 speed_perturb" "3 format" "4 filter" "5 token_list (token list)"
stage_group skip_train "6 lm_stats (LM statistics)" "7 lm_train (LM training)" "8 lm_perplexity (LM perplexity)" "10 stats" "11 train"
stage_group skip_eval "12 decode (decoding)" "13 score (scoring)"
stage_group skip_packing "14 pack"
stage_group skip_upload "15 upload"
feats_type=raw          # raw: the model computes its features from the waveform
lang=noinfo             # the language, in the names of the token list and the experiments

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

# Decoding
inference_config=""     # decoding config (conf/decode_asr.yaml)
inference_args=""       # extra options of asr_inference
inference_tag=""        # default: decode_<config name>_<model name>
inference_asr_model=valid.acc.ave.pth
inference_lm=valid.loss.ave.pth

# Packing
export_onnx=false       # stage 14 also exports the model to ONNX (${asr_exp}/onnx) and packs it
onnx_opts=""            # options of python -m espnet_summarymixing.export, e.g. "--quantize int8 --streaming --chunk_size 16"

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
  --feats_type (${feats_type}) --lang (${lang})
  --token_type (${token_type}) --nbpe (${nbpe}) --bpemode (${bpemode}) --bpe_train_text ("${bpe_train_text}")
  --oov (${oov}) --blank (${blank}) --sos_eos (${sos_eos}) --cleaner (${cleaner}) --nlsyms_txt (${nlsyms_txt})
  --use_lm (${use_lm}) --lm_config ("${lm_config}") --lm_args ("${lm_args}") --lm_tag ("${lm_tag}")
  --lm_train_text ("${lm_train_text}") --lm_exp ("${lm_exp}")
  --asr_config ("${asr_config}") --asr_args ("${asr_args}") --asr_tag ("${asr_tag}") --asr_exp ("${asr_exp}")
  --asr_stats_dir ("${asr_stats_dir}")
  --inference_config ("${inference_config}") --inference_args ("${inference_args}")
  --inference_tag ("${inference_tag}") --inference_asr_model (${inference_asr_model}) --inference_lm (${inference_lm})
  --export_onnx (${export_onnx}) --onnx_opts ("${onnx_opts}")
$(common_options_help)
EOF
)

parse_recipe_options "$@"  # utils/recipe_stages.sh: the options, then path.sh and cmd.sh

# ---------------------------------------------------------------------------------------------
# Check the options before anything runs (check_common_options, below, those cls.sh has too).
case "${token_type}" in char|bpe|word) ;; *) die "--token_type must be char, bpe or word, got '${token_type}'" ;; esac
case "${bpemode}" in unigram|bpe) ;; *) die "--bpemode must be unigram or bpe, got '${bpemode}'" ;; esac
case "${feats_type}" in raw) ;; *) die "--feats_type must be raw (the model computes its features), got '${feats_type}'" ;; esac
if [ -n "${inference_config}" ] && [ ! -f "${inference_config}" ]; then die "--inference_config ${inference_config}: no such file"; fi
if "${use_lm}" && [ -n "${lm_config}" ] && [ ! -f "${lm_config}" ]; then die "--lm_config ${lm_config}: no such file"; fi

# ---------------------------------------------------------------------------------------------
# Derived names (as ESPnet's).
set_common_names  # train_set_sp, data_feats
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

# The model the shared stages train and pack (utils/recipe_stages.sh): ESPnet's asr task on the text as
# tokens, whose shapes carry the vocabulary size (as ESPnet's asr.sh's).
task=asr task_config=${asr_config} task_args=${asr_args} task_exp=${asr_exp} task_stats_dir=${asr_stats_dir}
task_model=${inference_asr_model} target=text target_fold_length=150 target_shape_suffix=.${token_type}
target_opts=("${token_opts[@]}")

check_common_options nbpe  # last, as it imports the Python stack

# ---------------------------------------------------------------------------------------------
# This script's own stages (utils/recipe_stages.sh has the others).

# Stage 5: the vocabulary of the training text (sentencepiece model first for bpe), with <blank> first,
# <unk> second and <sos/eos> last.
stage_token_list() {
    local tokenizer=(--token_type "${token_type}") nlsyms="" log_file
    stage_start token_list "token list (${token_type}) from ${bpe_train_text}"
    need_from filter "${bpe_train_text}"
    mkdir -p "$(dirname "${token_list}")"
    if [ "${token_type}" = bpe ]; then
        if [ "${nlsyms_txt}" != none ]; then nlsyms=$(paste -s -d, "${nlsyms_txt}"); fi
        "${python}" pyscripts/spm_train.py --text "${bpe_train_text}" --vocab_size "${nbpe}" \
            --model_type "${bpemode}" --model_prefix "${bpeprefix}" --user_defined_symbols "${nlsyms}" \
            || stage_die "sentencepiece training failed (see above)"
        tokenizer+=(--bpemodel "${bpemodel}")
    fi
    log_file="$(dirname "${token_list}")/tokenize.log"
    "${python}" -m espnet2.bin.tokenize_text "${tokenizer[@]}" \
        --input "${bpe_train_text}" --output "${token_list}" --field 2- --cleaner "${cleaner}" --g2p none \
        --non_linguistic_symbols "${nlsyms_txt}" --write_vocabulary true \
        --add_symbol "${blank}:0" --add_symbol "${oov}:1" --add_symbol "${sos_eos}:-1" 2> "${log_file}" \
        || stage_die "tokenize_text failed, see ${log_file}"
    log "${token_list}: $(wc -l < "${token_list}") tokens"
    stage_done
}

# Stages 6-8 (--use_lm true): the language model's statistics, training and perplexity on the test sets.
lm_data=(--train_data_path_and_name_and_type "${lm_train_text},text,text"
         --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text")
stage_lm_stats() {
    "${use_lm}" || return 0
    stage_start lm_stats "LM statistics from ${lm_train_text}"
    need_from filter "${lm_train_text}" "${data_feats}/${valid_set}/text"
    need_from token_list "${token_list}"
    # shellcheck disable=SC2086
    collect_stats "${lm_stats_dir}" "${lm_train_text}" "${data_feats}/${valid_set}/text" espnet2.bin.lm_train \
        "${token_opts[@]}" "${lm_data[@]}" ${lm_config:+--config "${lm_config}"} ${lm_args}
    add_vocabulary_size "${lm_stats_dir}" text ".${token_type}" "${token_list}"
    stage_done
}
stage_lm_train() {
    "${use_lm}" || return 0
    stage_start lm_train "LM training: ${lm_exp}"
    need_from lm_stats "${lm_stats_dir}/train/text_shape.${token_type}"
    launch_training "${lm_exp}" lm "${lm_config}" "${lm_args}" "${token_opts[@]}" "${lm_data[@]}" \
        --train_shape_file "${lm_stats_dir}/train/text_shape.${token_type}" \
        --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" --fold_length 150 \
        || stage_die "LM training failed, see ${lm_exp}/train.log"
    stage_done
}
stage_lm_perplexity() {
    local x
    "${use_lm}" || return 0
    stage_start lm_perplexity "LM perplexity on ${test_sets}"
    need_from lm_train "${lm_exp}/config.yaml" "${lm_exp}/${inference_lm}"
    for x in ${test_sets}; do
        "${python}" -m espnet2.bin.lm_calc_perplexity --ngpu "$([ "${ngpu}" -gt 0 ] && echo 1 || echo 0)" \
            --data_path_and_name_and_type "${data_feats}/${x}/text,text,text" \
            --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${inference_lm}" \
            --output_dir "${lm_exp}/perplexity_${x}" --log_level WARNING \
            || stage_die "perplexity on ${x} failed (see above)"
        log "${x}: perplexity $(cat "${lm_exp}/perplexity_${x}/ppl")"
    done
    stage_done
}

# Stage 12: each test set decoded (with the LM when --use_lm true).
stage_decode() {
    local x lm_opts=()
    stage_start decode "decoding ${test_sets} with ${asr_exp}/${inference_asr_model}"
    need_model
    if "${use_lm}"; then lm_opts=(--lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}"); fi
    for x in ${test_sets}; do
        # shellcheck disable=SC2086
        run_inference "${x}" "${asr_exp}/${inference_tag}" 1best_recog "token token_int score text" \
            espnet2.bin.asr_inference --asr_train_config "${asr_exp}/config.yaml" \
            --asr_model_file "${asr_exp}/${inference_asr_model}" ${inference_config:+--config "${inference_config}"} \
            "${lm_opts[@]}" ${inference_args}
    done
    stage_done
}

# Stage 13: WER, CER (and TER for bpe) of each test set, then RESULTS.md.
stage_score() {
    local x m dir metrics="wer cer" bpe_opts
    stage_start score "scoring ${test_sets}"
    if [ "${token_type}" = bpe ]; then metrics+=" ter"; fi
    for x in ${test_sets}; do
        dir="${asr_exp}/${inference_tag}/${x}"
        need_from decode "${dir}/text"
        need_data "${x}" "${data_feats}/${x}/text"
        for m in ${metrics}; do
            if [ "${m}" = ter ]; then bpe_opts=(--bpemodel "${bpemodel}"); else bpe_opts=(); fi
            "${python}" pyscripts/score.py --ref "${data_feats}/${x}/text" --hyp "${dir}/text" --metric "${m}" \
                "${bpe_opts[@]}" --dataset "${inference_tag}/${x}" --out_dir "${dir}/score_${m}" > /dev/null \
                || stage_die "scoring ${x} (${m}) failed (see above)"
        done
    done
    stage_done_with_results pyscripts/collect_results.py
}

# Stage 14's ONNX export (--export_onnx true), which stage_pack runs before it packs the model with it.
export_to_onnx() {
    log "exporting to ONNX: ${asr_exp}/onnx ${onnx_opts}"
    # shellcheck disable=SC2086
    "${python}" -m espnet_summarymixing.export --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_asr_model}" --output_dir "${asr_exp}/onnx" ${onnx_opts} \
        || stage_die "ONNX export failed (see above); the model is not packed"
}
pack_opts=()
if [ -n "${inference_config}" ]; then pack_opts+=(--inference_config "${inference_config}"); fi
if "${export_onnx}"; then pack_before=export_to_onnx; pack_opts+=(--onnx_dir "${asr_exp}/onnx"); fi

run_stages

log "Successfully finished. [elapsed=${SECONDS}s]"
