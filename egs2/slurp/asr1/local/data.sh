#!/usr/bin/env bash
# Stage 1 of the SLURP recipe: Kaldi data directories data/{train,devel,test} for intent
# classification, the intent as the first word of each transcript (local/data_prep.py says how).
# The corpus is read from ${SLURP} (db.sh, or the environment): a folder laid out as the SLURP
# repository (github.com/pswietojanski/slurp) with its audio extracted into audio/, i.e.
# dataset/slurp/{train,devel,test,train_synthetic}.jsonl, dataset/slurp/metadata.json,
# audio/slurp_real/ and audio/slurp_synth/. When it is empty, SLURP is downloaded into
# ${datadir}/slurp: the text files from the repository at a fixed commit, and the audio archives from
# Zenodo (record 4274930: slurp_real.tar.gz 3.9 GB, slurp_synth.tar.gz about 2.8 GB), resumably; a
# re-run neither downloads nor extracts again.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
SECONDS=0

datadir=downloads       # where SLURP is downloaded (as ${datadir}/slurp) when SLURP is empty
use_synthetic=true      # add the synthetic (TTS) training recordings to data/train, as ESPnet
max_missing=0.01        # a set may lack the files of this fraction of its recordings (left out, with a warning)
# The text (jsonl, metadata) at a fixed commit of the SLURP repository, the audio on Zenodo.
slurp_commit=8eb16545762be97ace75334109d73824217311f1
text_url_base=https://raw.githubusercontent.com/pswietojanski/slurp/${slurp_commit}/dataset/slurp
audio_url_base=https://zenodo.org/record/4274930/files
# MD5 of the archives as Zenodo publishes them (empty: not checked). Only slurp_real's was found;
# slurp_synth.tar.gz is checked by its extraction alone (a corrupt gzip stream fails).
real_md5=9efc0f058ced47bf5131c7cb2cade513
synth_md5=
python=python3

help_message="Usage: $0 [--datadir ${datadir}] [--use_synthetic ${use_synthetic}] [--max_missing ${max_missing}] [--text_url_base URL] [--audio_url_base URL] [--real_md5 HEX] [--synth_md5 HEX] [--python ${python}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; } >&2
case "${use_synthetic}" in true|false) ;;
    *) log "Error: --use_synthetic must be true or false, got '${use_synthetic}'" >&2; exit 2 ;; esac

. ./path.sh
. ./db.sh

fail() {
    log "Error: stage 1 (data preparation): $*" >&2
    exit 1
}

# download URL DEST [download.py options]: fetched once, resumed if interrupted
download() {
    local url=$1 dest=$2
    shift 2
    "${python}" pyscripts/download.py "${url}" "${dest}" "$@" \
        || fail "could not download ${url} into ${dest} (see above; a re-run resumes the download)"
}

if [ -z "${SLURP}" ]; then
    SLURP=${datadir}/slurp
    log "SLURP is empty in db.sh: downloading SLURP into ${SLURP}"
    texts="train.jsonl devel.jsonl test.jsonl metadata.json"
    if "${use_synthetic}"; then texts+=" train_synthetic.jsonl"; fi
    for f in ${texts}; do
        download "${text_url_base}/${f}" "${SLURP}/dataset/slurp/${f}"
    done
    archives=slurp_real
    if "${use_synthetic}"; then archives+=" slurp_synth"; fi
    for a in ${archives}; do
        if [ "${a}" = slurp_real ]; then md5=${real_md5}; else md5=${synth_md5}; fi
        if [ -f "${SLURP}/audio/.${a}.tar.gz.extracted" ] && [ -d "${SLURP}/audio/${a}" ]; then
            log "${a}: already downloaded and extracted in ${SLURP}/audio/${a}"
            continue
        fi
        rm -f "${SLURP}/audio/.${a}.tar.gz.extracted"  # extracted, then removed: extract it again
        download "${audio_url_base}/${a}.tar.gz" "${datadir}/${a}.tar.gz" ${md5:+--md5 "${md5}"} \
            --extract "${SLURP}/audio"
    done
fi

if [ ! -f "${SLURP}/dataset/slurp/train.jsonl" ]; then
    fail "${SLURP}/dataset/slurp/train.jsonl not found: set SLURP (db.sh or the environment) to the folder that holds dataset/slurp/*.jsonl and audio/slurp_real/ (the SLURP repository with its audio extracted into audio/), or leave it empty to download the corpus"
fi
log "preparing data/ from ${SLURP} (synthetic training recordings: ${use_synthetic})"
"${python}" local/data_prep.py "${SLURP}" data --use_synthetic "${use_synthetic}" --max_missing "${max_missing}" \
    || fail "local/data_prep.py stopped (see above); data/ was left as it was"
log "Successfully finished. [elapsed=${SECONDS}s]"
