#!/usr/bin/env bash
# CMU AN4 (spelled letters and digits, 0.8 h) with a SummaryMixing Conformer, sized to train and
# decode on a 2-core CPU in under half an hour. Options of asr.sh can be added, e.g.
#     ./run.sh --asr_config conf/tuning/train_asr_conformer_e6_size144_mlp576_heads4_k15.yaml # self-attention baseline
#     ./run.sh --stage 12                                                                   # decode again
set -euo pipefail

./asr.sh \
    --lang en \
    --train_set train_nodev \
    --valid_set train_dev \
    --test_sets "train_dev test" \
    --token_type char \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --nj 2 \
    --inference_nj 2 \
    --asr_config conf/train_asr_summarymixing.yaml \
    --inference_config conf/decode_asr.yaml \
    "$@"
