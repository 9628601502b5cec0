#!/usr/bin/env bash
# Google Speech Commands v0.02, 35 words (every word a class), with a SummaryMixing Conformer
# (12 x 256), on a GPU: stage 1 downloads the corpus (2.4 GB) unless SPEECHCOMMANDS is set in db.sh.
# Options of cls.sh can be added, e.g.
#     ./run.sh --cls_config conf/train_cls_conformer.yaml                   # ESPnet's Conformer (rel-pos self-attention)
#     ./run.sh --cls_config conf/train_cls_summarymixing_branchformer.yaml  # SummaryMixing Branchformer
#     ./run.sh --ngpu 4                                                     # several GPUs (--ngpu 0: CPU)
#     ./run.sh --speed_perturb_factors "0.9 1.0 1.1"                        # speed perturbation of the training set
#     ./run.sh --stage 7                                                    # classify and score again
# The 12-class task (yes no up down left right on off stop go, _unknown_, _silence_) has data sets of
# its own and, with --expdir, its own statistics and models, so both tasks live side by side:
#     ./run.sh --local_data_opts "--task 12" --train_set train12 --valid_set dev12 \
#         --test_sets "dev12 test12 test12_official" --expdir exp12
# (test12_official, the dataset's separate 12-class test set, exists when stage 1 downloaded the
# corpus, or with --local_data_opts "--task 12 --test_set_dir /path/to/speech_commands_test_set_v0.02").
set -euo pipefail

./cls.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --fs 16k \
    --nj 8 \
    --inference_nj 8 \
    --cls_config conf/train_cls_summarymixing_conformer.yaml \
    --inference_model valid.acc.ave.pth \
    "$@"
