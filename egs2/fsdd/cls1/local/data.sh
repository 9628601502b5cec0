#!/usr/bin/env bash
# Stage 1 of the FSDD recipe: Kaldi data directories data/{train,dev,test} from the Free Spoken Digit
# Dataset, split by speaker (local/data_prep.py). The corpus is read from ${FSDD} (db.sh, or the
# environment: the folder that holds recordings/); when that is empty the published corpus (a git tag
# of github.com/Jakobovski/free-spoken-digit-dataset, about 10 MB) is downloaded into ${datadir} —
# resumable, and a re-run neither downloads nor extracts again.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*" >&2
}
SECONDS=0

datadir=downloads       # where the archive is downloaded and extracted
fsdd_version=1.0.10     # the corpus's git tag (v1.0.10: six speakers, 3,000 clips)
fsdd_url=""             # default: the GitHub archive of tag v${fsdd_version}
fsdd_sha256=""          # SHA-256 of the archive, checked when given (the corpus publishes none)
dev_speakers=lucas      # speakers of the dev set (comma-separated)
test_speakers=nicolas   # speakers of the test set (comma-separated); every other speaker is trained on
dev_takes=""            # takes of the other speakers that go to dev instead (e.g. 45-49; local/data_prep.py)
test_takes=""           # takes of the other speakers that go to test instead (e.g. 0-4)
suffix=""               # appended to the set names: data/train${suffix}, data/dev${suffix}, data/test${suffix}
fold=""                 # one fold of run.sh --folds, instead of the options above: a speaker (leave-one-speaker-out:
                        # test that speaker, dev takes 45-49 of the others, data/*_loso-<speaker>) or "takes" (the
                        # usual split, not speaker-disjoint: test takes 0-4, dev takes 45-49, data/*_takes)
list_speakers=false     # print the corpus's speakers (one line) and stop
python=python3

help_message="Usage: $0 [--datadir ${datadir}] [--fsdd_version ${fsdd_version}] [--fsdd_url URL] [--fsdd_sha256 HEX] [--dev_speakers \"${dev_speakers}\"] [--test_speakers \"${test_speakers}\"] [--dev_takes \"${dev_takes}\"] [--test_takes \"${test_takes}\"] [--suffix \"${suffix}\"] [--fold <speaker>|takes] [--list_speakers true]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }

. ./path.sh
. ./db.sh

if [ -z "${FSDD}" ]; then
    [ -n "${fsdd_url}" ] || fsdd_url="https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v${fsdd_version}.tar.gz"
    log "FSDD is empty in db.sh: downloading ${fsdd_url} into ${datadir}"
    "${python}" pyscripts/download.py "${fsdd_url}" "${datadir}/fsdd-${fsdd_version}.tar.gz" \
        ${fsdd_sha256:+--sha256 "${fsdd_sha256}"} --extract "${datadir}" \
        || { log "Error: stage 1: the FSDD download or its extraction failed (see above)"; exit 1; }
    FSDD=${datadir}/free-spoken-digit-dataset-${fsdd_version}
fi
if [ ! -d "${FSDD}/recordings" ]; then
    log "Error: stage 1: ${FSDD} is not an FSDD tree (${FSDD}/recordings not found): set FSDD in db.sh to the folder that holds recordings/, or leave it empty to download the corpus"
    exit 1
fi
if [ "${list_speakers}" = true ]; then
    exec "${python}" local/data_prep.py "${FSDD}" data --list_speakers
fi
if [ "${fold}" = takes ]; then
    dev_speakers="" test_speakers="" dev_takes=45-49 test_takes=0-4 suffix=_takes
elif [ -n "${fold}" ]; then
    dev_speakers="" test_speakers=${fold} dev_takes=45-49 test_takes="" suffix=_loso-${fold}
fi
log "preparing data/{train,dev,test}${suffix} from ${FSDD} (dev: ${dev_speakers:-no speaker}${dev_takes:+, takes ${dev_takes}}; test: ${test_speakers:-no speaker}${test_takes:+, takes ${test_takes}}; the other speakers' other takes: train)"
"${python}" local/data_prep.py "${FSDD}" data --dev_speakers "${dev_speakers}" --test_speakers "${test_speakers}" \
    --dev_takes "${dev_takes}" --test_takes "${test_takes}" --suffix "${suffix}" \
    || { log "Error: stage 1: data preparation from ${FSDD} failed (see above)"; exit 1; }
log "Successfully finished. [elapsed=${SECONDS}s]"
