#!/usr/bin/env bash
# The recipe's model through ONNX: export (float32 and int8), then greedy CTC on ${test_set} with
#   - PyTorch (python -m espnet_summarymixing.stream_decode --full_context: the reference),
#   - onnxruntime, float32 graph, and int8 graph (python -m espnet_summarymixing.onnx_transcribe; static
#     quantisation calibrated on 100 training utterances, or dynamic with --calibration ""),
# each scored (WER, CER) into ${asr_exp}/decode_*/; the table with real-time factors and file sizes
# goes to ${asr_exp}/onnx.md. Stages 1-11 must have run (./run.sh --stop_stage 11).
# With --chunk_size N (a streaming model), the export adds the streaming graph and the table two rows:
# onnx_transcribe --streaming with 1 thread and with ${threads}, their latency and compute per chunk.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/onnx.sh) $*"
}
SECONDS=0

asr_exp=exp/asr_train_asr_summarymixing_raw_en_char_sp
asr_model=valid.acc.ave.pth
test_set=test
threads=2
chunk_size=     # streaming: encoder frames per chunk (empty: offline only)
calibration=dump/raw/org/train_nodev_sp/wav.scp  # int8: static quantisation calibrated on this audio (empty: dynamic)
block_seconds=0.04  # streaming: audio arriving per step (seconds)
python=python3

help_message="Usage: $0 [--asr_exp ${asr_exp}] [--asr_model ${asr_model}] [--test_set ${test_set}] [--threads ${threads}] [--chunk_size N] [--calibration ${calibration}]"
. utils/parse_options.sh
[ $# -eq 0 ] || { log "Error: no positional argument expected, got: $*"; exit 2; }
. ./path.sh

[ -f "${asr_exp}/${asr_model}" ] || { log "Error: ${asr_exp}/${asr_model} not found: run ./run.sh --stop_stage 11 first"; exit 1; }
data=dump/raw/${test_set}
[ -f "${data}/wav.scp" ] || { log "Error: ${data}/wav.scp not found: run ./run.sh --stop_stage 4 first"; exit 1; }
onnx=${asr_exp}/onnx
streaming=(); [ -n "${chunk_size}" ] && streaming=(--streaming --chunk_size "${chunk_size}")
static=(); [ -n "${calibration}" ] && static=(--calibration "${calibration}")
if [ ! -f "${onnx}/model.int8.onnx" ] || { [ -n "${chunk_size}" ] && ! grep -q "\"chunk_size\": ${chunk_size}," "${onnx}/manifest.json"; }; then
    log "exporting ${asr_exp}/${asr_model} to ${onnx}"
    "${python}" -m espnet_summarymixing.export --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${asr_model}" --output_dir "${onnx}" --quantize int8 "${static[@]}" "${streaming[@]}"
fi

table=${asr_exp}/onnx.md
{
    echo "| greedy CTC on ${test_set} | WER | CER | threads | real-time factor | algorithmic latency; compute per chunk | model file |"
    echo "|---|---|---|---|---|---|---|"
} > "${table}"
runs="pytorch onnx_float32 onnx_int8"
[ -n "${chunk_size}" ] && runs+=" onnx_stream_chunk${chunk_size}_1thread onnx_stream_chunk${chunk_size}_${threads}threads"
for run in ${runs}; do
    n=${threads}; stream="-"
    out=${asr_exp}/decode_greedy_ctc_${run}/${test_set}
    mkdir -p "${out}"
    log "${run}: ${data}/wav.scp"
    case ${run} in
        pytorch)
            OMP_NUM_THREADS=${threads} "${python}" -m espnet_summarymixing.stream_decode --model "${asr_exp}" \
                --wav_scp "${data}/wav.scp" --output "${out}/text" --full_context 2> "${out}/decode.log" \
                || { log "Error: decoding failed, see ${out}/decode.log"; exit 1; }
            size=$(stat -L -c %s "${asr_exp}/${asr_model}") ;;
        onnx_float32|onnx_int8)
            opts=(); [ "${run}" = onnx_int8 ] && opts=(--int8)
            "${python}" -m espnet_summarymixing.onnx_transcribe --model "${onnx}" --wav_scp "${data}/wav.scp" \
                --output "${out}/text" --threads "${threads}" "${opts[@]}" 2> "${out}/decode.log" \
                || { log "Error: decoding failed, see ${out}/decode.log"; exit 1; }
            file=model.onnx; [ "${run}" = onnx_int8 ] && file=model.int8.onnx
            size=$(stat -c %s "${onnx}/${file}") ;;
        onnx_stream_*)
            [[ "${run}" == *_1thread ]] && n=1
            "${python}" -m espnet_summarymixing.onnx_transcribe --model "${onnx}" --wav_scp "${data}/wav.scp" \
                --output "${out}/text" --threads "${n}" --streaming --block_seconds "${block_seconds}" 2> "${out}/decode.log" \
                || { log "Error: decoding failed, see ${out}/decode.log"; exit 1; }
            stream=$(sed -n 's/.*algorithmic latency \([0-9]*\) ms; compute per chunk: median \([0-9.]*\) ms, max \([0-9.]*\) ms.*/\1 ms; \2 \/ \3 ms/p' "${out}/decode.log")
            size=$(( $(stat -c %s "${onnx}/streaming.onnx") + $(stat -c %s "${onnx}/features.onnx") )) ;;
    esac
    tail -n 1 "${out}/decode.log"
    for m in wer cer; do
        "${python}" pyscripts/score.py --ref "${data}/text" --hyp "${out}/text" --metric "${m}" \
            --dataset "decode_greedy_ctc_${run}/${test_set}" --out_dir "${out}/score_${m}" > /dev/null
    done
    err() { "${python}" -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['Err']:.1f}\")" "$1"; }
    rtf=$(sed -n 's/.*real-time factor \([0-9.]*\).*/\1/p' "${out}/decode.log" | tail -n 1)
    echo "| ${run} | $(err "${out}/score_wer/scores.json") | $(err "${out}/score_cer/scores.json") | ${n} | ${rtf} | ${stream} | $((size / 1000)) kB |" >> "${table}"
done
cat "${table}"
log "Successfully finished. [elapsed=${SECONDS}s]"
