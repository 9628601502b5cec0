#!/usr/bin/env bash
# Spoken-digit recognition (keyword spotting with ten words) on the Free Spoken Digit Dataset, 8 kHz,
# split by speaker (local/data.sh: dev lucas, test nicolas, train every other speaker), with a
# SummaryMixing Conformer sized to train on a 2-core CPU in about ten minutes. Options of cls.sh
# can be added, e.g.
#     ./run.sh --cls_config conf/tuning/train_cls_conformer_e4_size144_mlp576_heads4_k15.yaml  # self-attention twin
#     ./run.sh --stage 7                                                                      # classify and score again
#     ./run.sh --local_data_opts "--test_speakers theo,nicolas --dev_speakers yweweler"       # another split
set -euo pipefail

./cls.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --fs 8k \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --min_wav_duration 0.1 \
    --max_wav_duration 3 \
    --nj 2 \
    --inference_nj 2 \
    --label_list conf/labels.txt \
    --cls_config conf/train_cls_summarymixing.yaml \
    "$@"
