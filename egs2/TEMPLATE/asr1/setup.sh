#!/usr/bin/env bash
# Creates a new recipe directory from this template, as ESPnet's TEMPLATE/asr1/setup.sh does:
#     egs2/TEMPLATE/asr1/setup.sh egs2/mycorpus/asr1     # speech recognition (asr.sh)
#     egs2/TEMPLATE/cls1/setup.sh egs2/mycorpus/cls1     # classification (cls.sh; that setup.sh is a link to this one)
# The shared parts are relative symbolic links to the template, so its fixes and the site settings
# reach every recipe: asr.sh or cls.sh, path.sh, utils/, pyscripts/, and the site files cmd.sh (job backend),
# db.sh (corpus locations) and conf/slurm.conf (sbatch options); a recipe that needs its own site file
# replaces the link by a file. run.sh and local/data.sh are starting points to fill in. An existing
# file is never overwritten.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    echo "Usage: $0 <new recipe dir, e.g. egs2/mycorpus/$(basename "$(dirname "$0")")>"
    [ $# -eq 1 ] && exit 0
    exit 2
fi
template=$(cd "$(dirname "$0")" && pwd)
target=$1
mkdir -p "${target}/conf" "${target}/local"
target=$(cd "${target}" && pwd)
[ "${target}" != "${template}" ] || { echo "$0: the target is the template itself" >&2; exit 1; }
case "$(basename "${template}")" in
    cls1) main=cls.sh ;;
    *) main=asr.sh ;;
esac

relpath() {  # relpath FROM_DIR TO_PATH
    python3 -c 'import os, sys; print(os.path.relpath(sys.argv[2], sys.argv[1]))' "$1" "$2"
}
for f in "${main}" path.sh utils pyscripts cmd.sh db.sh conf/slurm.conf; do
    [ -e "${target}/${f}" ] || ln -s "$(relpath "$(dirname "${target}/${f}")" "${template}/${f}")" "${target}/${f}"
done
if [ ! -e "${target}/run.sh" ] && [ "${main}" = cls.sh ]; then
    cat > "${target}/run.sh" <<'RUN'
#!/usr/bin/env bash
# Recipe entry point: the data sets and configs of this corpus; every option of cls.sh can be
# added on the command line (./run.sh --stage 6 --ngpu 2).
set -euo pipefail

./cls.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --fs 16k \
    --cls_config conf/train_cls.yaml \
    "$@"
RUN
    chmod +x "${target}/run.sh"
fi
if [ ! -e "${target}/run.sh" ]; then
    cat > "${target}/run.sh" <<'RUN'
#!/usr/bin/env bash
# Recipe entry point: the data sets and configs of this corpus; every option of asr.sh can be
# added on the command line (./run.sh --stage 10 --ngpu 2).
set -euo pipefail

./asr.sh \
    --lang en \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --token_type bpe \
    --nbpe 100 \
    --asr_config conf/train_asr.yaml \
    --inference_config conf/decode_asr.yaml \
    "$@"
RUN
    chmod +x "${target}/run.sh"
fi
if [ ! -e "${target}/local/data.sh" ]; then
    cat > "${target}/local/data.sh" <<'DATA'
#!/usr/bin/env bash
# Stage 1 of asr.sh / cls.sh: write Kaldi data directories data/<set>/{wav.scp,text,utt2spk,spk2utt}
# for the sets named in run.sh (audio as .wav, .flac or .sph files; utterance ids sorted, speaker
# first; text: the transcript, or for cls.sh the clip's label).
set -euo pipefail
. ./db.sh
echo "local/data.sh: this recipe's data preparation is still to be written (see egs2/an4/asr1/local/data.sh)" >&2
exit 1
DATA
    chmod +x "${target}/local/data.sh"
fi
echo "created ${target}: edit local/data.sh, conf/ and run.sh, then run ./run.sh"
