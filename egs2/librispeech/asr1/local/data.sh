#!/usr/bin/env bash
# Stage 1 of the LibriSpeech recipes: Kaldi data directories data/<part> for the parts in --parts
# (by default all seven: train_clean_100, train_clean_360, train_other_500, dev_clean, dev_other,
# test_clean, test_other) and the sets ESPnet's recipes combine from them: data/train_960 (when the
# three training parts are there) and data/dev (dev_clean + dev_other, the validation set).
# The 100 h recipe's local/data.sh is a link to this file; its run.sh passes the five parts it uses.
# The corpus is read from ${LIBRISPEECH} (db.sh, or the environment): the directory that holds
# LibriSpeech/<part>/ (where the archives unpack) or the <part>/ directories themselves. When it is
# empty, the official archives (openslr SLR12, about 60 GB for all seven parts, 7.6 GB for the five of
# the 100 h recipe) are downloaded into ${datadir}, their
# SHA-256 checked; a download resumes where it stopped, and a re-run neither downloads nor extracts
# a part again.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"
}
SECONDS=0

datadir=downloads       # where the archives are downloaded and extracted
url_base=https://www.openslr.org/resources/12   # or a mirror: https://us.openslr.org/resources/12, https://openslr.elda.org/resources/12
remove_archives=false   # delete each archive once extracted (saves the archives' size)
all_parts="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"
parts=${all_parts}      # the parts to download and prepare, separated by spaces or commas
python=python3

help_message="Usage: $0 [--parts \"${parts}\"] [--datadir ${datadir}] [--url_base URL] [--remove_archives ${remove_archives}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; } >&2
in_list() {  # in_list "LIST" ITEM...: true when every ITEM is a word of LIST
    local list=$1 item
    shift
    for item in "$@"; do
        case " ${list} " in *" ${item} "*) ;; *) return 1 ;; esac
    done
}
parts=${parts//,/ }
[ -n "${parts// /}" ] || { log "Error: --parts is empty: give one or more of: ${all_parts}"; exit 2; } >&2
for part in ${parts}; do
    in_list "${all_parts}" "${part}" \
        || { log "Error: --parts has '${part}', which is not a LibriSpeech part: choose from ${all_parts}"; exit 2; } >&2
done

. ./path.sh
. ./db.sh


# SHA-256 of the openslr archives, from torchaudio's LibriSpeech dataset (torchaudio/datasets/
# librispeech.py, table _CHECKSUMS; unchanged from torchaudio 0.x to 2.9.1).
sha256_of() {
    case "$1" in
        train-clean-100) echo d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2 ;;
        train-clean-360) echo 146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf ;;
        train-other-500) echo ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2 ;;
        dev-clean) echo 76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3 ;;
        dev-other) echo 12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365 ;;
        test-clean) echo 39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23 ;;
        test-other) echo d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29 ;;
        *) log "Error: no checksum for part '$1'"; return 1 ;;
    esac
}

if [ -z "${LIBRISPEECH}" ]; then
    log "LIBRISPEECH is empty in db.sh: downloading ${parts// /, } from ${url_base} into ${datadir}"
    for part in ${parts}; do
        marker=${datadir}/.${part}.tar.gz.extracted
        if [ -f "${marker}" ] && [ -d "${datadir}/LibriSpeech/${part}" ]; then
            log "${part}: already downloaded and extracted in ${datadir}/LibriSpeech/${part}"
            continue
        fi
        rm -f "${marker}"  # extracted once, then deleted: extract it again
        "${python}" pyscripts/download.py "${url_base}/${part}.tar.gz" "${datadir}/${part}.tar.gz" \
            --sha256 "$(sha256_of "${part}")" --extract "${datadir}" \
            || { log "Error: could not download or extract ${part} (re-running resumes the download)"; exit 1; }
        if "${remove_archives}"; then rm -f "${datadir}/${part}.tar.gz"; fi
    done
    LIBRISPEECH=${datadir}
fi

log "preparing data/ from ${LIBRISPEECH}"
# shellcheck disable=SC2086
"${python}" local/data_prep.py "${LIBRISPEECH}" data --parts ${parts}
if in_list "${parts}" train-clean-100 train-clean-360 train-other-500; then
    "${python}" pyscripts/data_dir.py combine data/train_960 data/train_clean_100 data/train_clean_360 data/train_other_500
fi
if in_list "${parts}" dev-clean dev-other; then
    "${python}" pyscripts/data_dir.py combine data/dev data/dev_clean data/dev_other
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
