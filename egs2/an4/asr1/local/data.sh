#!/usr/bin/env bash
# Stage 1 of the AN4 recipe: Kaldi data directories data/{train_nodev,train_dev,test} (and
# data/train, the two first together) from CMU AN4. The corpus is read from ${AN4} (db.sh, or the
# environment); when that is empty the official archive (an4_sphere.tar.gz, 64 MB, NIST SPHERE
# audio) is downloaded into ${datadir} — resumable, and a re-run neither downloads nor extracts again.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
SECONDS=0

datadir=downloads       # where the archive is downloaded and extracted
an4_url=http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz
ndev_utt=100            # first utterances of the training part held out as train_dev (as ESPnet)
python=python3

help_message="Usage: $0 [--datadir ${datadir}] [--an4_url URL] [--ndev_utt ${ndev_utt}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }

. ./path.sh
. ./db.sh

if [ -z "${AN4}" ]; then
    log "AN4 is empty in db.sh: downloading ${an4_url} into ${datadir}"
    "${python}" pyscripts/download.py "${an4_url}" "${datadir}/an4_sphere.tar.gz" --extract "${datadir}"
    AN4=${datadir}/an4
fi
if [ ! -f "${AN4}/etc/an4_train.transcription" ]; then
    log "Error: ${AN4} is not an AN4 tree (${AN4}/etc/an4_train.transcription not found): set AN4 in db.sh to the directory that holds etc/ and wav/, or leave it empty to download the corpus"
    exit 1
fi
log "preparing data/ from ${AN4}"
"${python}" local/data_prep.py "${AN4}" data --ndev "${ndev_utt}"
log "Successfully finished. [elapsed=${SECONDS}s]"
