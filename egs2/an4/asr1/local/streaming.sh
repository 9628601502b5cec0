#!/usr/bin/env bash
# Offline vs streaming recognition of ONE chunk-trained SummaryMixing Conformer on AN4.
#   1. trains conf/tuning/..._chunk1-16.yaml through ./run.sh (stages 11-14; stages 1-10 must have run)
#      and decodes it offline with the joint CTC/attention beam search of stage 12;
#   2. decodes ${test_set} with greedy CTC: whole utterances (full context), then streamed as if live,
#      ${block_seconds} s of audio at a time, at each of ${chunk_sizes} encoder frames (40 ms) per chunk;
#   3. scores every decoding (WER, CER) into ${asr_exp}/decode_*/ and tables them with
#      local/streaming_results.py (${asr_exp}/streaming.md and .json): chunk, look-ahead, algorithmic
#      latency, compute per chunk, WER / CER and the ratio to the same model's full-context WER.
# --chunk_sizes must lie in the model's trained chunk_size_range (the decoder refuses the others).
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/streaming.sh) $*"
}
SECONDS=0

asr_config=conf/tuning/train_asr_summarymixing_conformer_e6_size144_mlp576_k15_chunk1-16.yaml
test_set=test
chunk_sizes="4 16"      # encoder frames per chunk (x 40 ms)
block_seconds=0.04      # audio arriving per step (seconds)
skip_train=false
python=python3

help_message="Usage: $0 [--asr_config ${asr_config}] [--test_set ${test_set}] [--chunk_sizes \"${chunk_sizes}\"] [--block_seconds ${block_seconds}] [--skip_train false]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }
. ./path.sh

asr_exp=exp/asr_$(basename "${asr_config}" .yaml)_streaming
if ! "${skip_train}"; then
    ./run.sh --stage 11 --asr_config "${asr_config}" --asr_exp "${asr_exp}" --test_sets "${test_set}"
fi
[ -f "${asr_exp}/valid.acc.ave.pth" ] || { log "Error: ${asr_exp}/valid.acc.ave.pth not found: train first (without --skip_train true)"; exit 1; }

data=dump/raw/${test_set}
for chunk in full ${chunk_sizes}; do
    if [ "${chunk}" = full ]; then
        name=decode_greedy_ctc_full_context; opts=(--full_context)
    else
        name=decode_greedy_ctc_stream_chunk${chunk}; opts=(--chunk_size "${chunk}")
    fi
    out="${asr_exp}/${name}/${test_set}"
    mkdir -p "${out}"
    log "${name}: ${data}/wav.scp"
    # its last line: chunk, look-ahead, algorithmic latency, compute per chunk (local/streaming_results.py reads it)
    "${python}" -m espnet_summarymixing.stream_decode --model "${asr_exp}" --wav_scp "${data}/wav.scp" \
        --output "${out}/text" --block_seconds "${block_seconds}" "${opts[@]}" 2> "${out}/stream_decode.log" \
        || { log "Error: decoding failed, see ${out}/stream_decode.log"; exit 1; }
    tail -n 2 "${out}/stream_decode.log"
    for m in wer cer; do
        "${python}" pyscripts/score.py --ref "${data}/text" --hyp "${out}/text" --metric "${m}" \
            --dataset "${name}/${test_set}" --out_dir "${out}/score_${m}" > /dev/null
    done
done
"${python}" local/streaming_results.py "${asr_exp}" --test_set "${test_set}" --out "${asr_exp}/streaming.md"
"${python}" pyscripts/collect_results.py --exp_dir "${asr_exp}" --out "${asr_exp}/RESULTS.md"
{ echo; echo "### Streaming (${test_set}, ${block_seconds} s audio blocks)"; cat "${asr_exp}/streaming.md"; } >> "${asr_exp}/RESULTS.md"
cat "${asr_exp}/RESULTS.md"
log "Successfully finished. [elapsed=${SECONDS}s]"
