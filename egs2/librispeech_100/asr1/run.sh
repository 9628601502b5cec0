#!/usr/bin/env bash
# LibriSpeech 100 h (train-clean-100) with a SummaryMixing Conformer: the sets and options of ESPnet's
# egs2/librispeech_100/asr1 recipe (BPE 5000 from the training transcripts, speed perturbation,
# utterances up to 30 s). See README.md for GPUs, nodes, mixed precision and the paired baselines.
# Options of asr.sh can be added, e.g.
#     ./run.sh --ngpu 4                                                                 # 4 GPUs, one node
#     ./run.sh --asr_config conf/tuning/train_asr_conformer_e12_size256_mlp1024_heads4.yaml  # self-attention baseline
#     ./run.sh --use_lm true                                                            # + Transformer LM (decode_asr_lm.yaml)
#     ./run.sh --stage 12                                                               # decode again
set -euo pipefail

train_set=train_clean_100
valid_set=dev
test_sets="test_clean test_other dev_clean dev_other"
# local/data.sh is the 960 h recipe's: only the parts this recipe uses are downloaded and prepared.
# A --local_data_opts on the command line is added after them (so its own --parts would still win).
local_data_opts="--parts train-clean-100,dev-clean,dev-other,test-clean,test-other"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --local_data_opts) [ $# -ge 2 ] || { echo "$0: --local_data_opts needs a value" >&2; exit 2; }
                           local_data_opts+=" $2"; shift 2 ;;
        --local_data_opts=*) local_data_opts+=" ${1#*=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"

asr_config=conf/train_asr_summarymixing.yaml
lm_config=conf/train_lm_transformer.yaml
inference_config=conf/decode_asr.yaml
# With --use_lm true (as asr.sh will read it: the last one given counts) the decoding config with an LM
# weight is the default; an --inference_config on the command line still wins (it comes later).
if [ "$(utils/option_value.sh use_lm "$@")" = true ]; then inference_config=conf/decode_asr_lm.yaml; fi

./asr.sh \
    --lang en \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "${local_data_opts}" \
    --token_type bpe \
    --nbpe 5000 \
    --bpe_train_text "data/${train_set}/text" \
    --lm_train_text "data/${train_set}/text" \
    --max_wav_duration 30 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --asr_config "${asr_config}" \
    --lm_config "${lm_config}" \
    --inference_config "${inference_config}" \
    "$@"
