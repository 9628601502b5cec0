#!/usr/bin/env bash
# Stage 1 of the Speech Commands recipe: Kaldi data directories from Google Speech Commands v0.02,
# split by the corpus's own validation_list.txt and testing_list.txt (see local/data_prep.py):
#     --task 35   data/train, data/dev, data/test           35 words, one class each
#     --task 12   data/train12, data/dev12, data/test12     yes no up down left right on off stop go,
#                 _unknown_ (the other 25 words) and _silence_ (1-second clips cut from the
#                 background-noise recordings into ${datadir}/silence_clips), and
#                 data/test12_official: the dataset's separate 12-class test set archive.
# The corpus is read from ${SPEECHCOMMANDS} (db.sh, or the environment): the extracted training
# archive. When that is empty, the official archive (2.4 GB; for --task 12 also the 112 MB test set
# archive) is downloaded into ${datadir}, its SHA-256 checked and extracted; a download resumes where
# it stopped, and a re-run neither downloads nor extracts again.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
SECONDS=0

datadir=downloads       # where the archives are downloaded and extracted, and the silence clips cut
task=35                 # 35 (every word a class) or 12 (10 keywords + _unknown_ + _silence_)
# The official archives. Size and SHA-256 from TensorFlow Datasets' checksum list
# (tensorflow_datasets/url_checksums/speech_commands.txt); the sizes match ESPnet's
# egs2/speechcommands/asr1/local/data.sh. Another URL (a mirror) must serve the same bytes.
train_url=http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz
train_sha256=af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58      # 2,428,923,189 bytes
test_set_url=http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz
test_set_sha256=cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df   # 112,563,277 bytes
test_set_dir=""         # --task 12 with ${SPEECHCOMMANDS} set: the extracted test set archive, if any
python=python3

help_message="Usage: $0 [--task 35|12] [--datadir ${datadir}] [--test_set_dir DIR] [--train_url URL] [--train_sha256 HEX] [--test_set_url URL] [--test_set_sha256 HEX] [--python ${python}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; } >&2
case "${task}" in
    35|12) ;;
    *) { log "Error: --task must be 35 or 12, got '${task}'"; exit 2; } >&2 ;;
esac

. ./path.sh
. ./db.sh

# fetch URL SHA256 NAME: download ${datadir}/NAME.tar.gz and extract it into ${datadir}/NAME (once).
fetch() {
    local url=$1 sha256=$2 name=$3
    if [ -f "${datadir}/${name}/.${name}.tar.gz.extracted" ]; then
        log "${name}: already downloaded and extracted in ${datadir}/${name}"
        return 0
    fi
    log "downloading ${url} into ${datadir}"
    "${python}" pyscripts/download.py "${url}" "${datadir}/${name}.tar.gz" --sha256 "${sha256}" \
        --extract "${datadir}/${name}" \
        || { log "Error in stage 1 (data preparation): could not download or extract ${datadir}/${name}.tar.gz from ${url} (see above; re-running resumes the download)"; exit 1; } >&2
}

if [ -z "${SPEECHCOMMANDS}" ]; then
    log "SPEECHCOMMANDS is empty in db.sh: downloading the corpus into ${datadir}"
    fetch "${train_url}" "${train_sha256}" speech_commands_v0.02
    SPEECHCOMMANDS=${datadir}/speech_commands_v0.02
    if [ "${task}" = 12 ] && [ -z "${test_set_dir}" ]; then
        fetch "${test_set_url}" "${test_set_sha256}" speech_commands_test_set_v0.02
        test_set_dir=${datadir}/speech_commands_test_set_v0.02
    fi
fi
if [ ! -d "${SPEECHCOMMANDS}" ]; then
    log "Error in stage 1 (data preparation): SPEECHCOMMANDS=${SPEECHCOMMANDS} is not a directory: set SPEECHCOMMANDS in db.sh to the extracted speech_commands_v0.02.tar.gz (the folder with one folder per word and validation_list.txt), or leave it empty to download the corpus" >&2
    exit 1
fi

opts=(--task "${task}" --silence_dir "${datadir}/silence_clips")
if [ -n "${test_set_dir}" ]; then
    [ "${task}" = 12 ] || { log "Error: --test_set_dir is for --task 12 (the official test set has its 12 labels)"; exit 2; } >&2
    opts+=(--test_set "${test_set_dir}")
fi
if [ "${task}" = 12 ] && [ -z "${test_set_dir}" ]; then
    log "no --test_set_dir: data/test12_official (the dataset's separate 12-class test set) is not prepared"
fi
log "preparing data/ for the ${task}-class task from ${SPEECHCOMMANDS}"
"${python}" local/data_prep.py "${SPEECHCOMMANDS}" data "${opts[@]}" \
    || { log "Error in stage 1 (data preparation): local/data_prep.py failed on ${SPEECHCOMMANDS} (its message is above); data/ is as it was"; exit 1; } >&2
log "Successfully finished. [elapsed=${SECONDS}s]"
