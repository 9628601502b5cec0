# Helpers shared by the template scripts (asr.sh, cls.sh), sourced after their options are parsed:
#     recipe_name=cls.sh; . utils/recipe_lib.sh
# The caller sets ${recipe_name} (for messages), ${stage}, ${stop_stage}, ${python} and, before the
# first stage_done, ${stage_times_dir} (the experiment folder that keeps stage_times.tsv).

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${recipe_name}) $*"
}

die() {
    log "Error: $*"
    exit 1
}

# The smallest of its integer arguments.
min() {
    local m=$1 x
    for x in "$@"; do [ "${x}" -lt "${m}" ] && m=${x}; done
    echo "${m}"
}

# need WHAT FILE...: every FILE exists, else stop naming the stage that produces it (WHAT).
need() {
    local what=$1 f
    shift
    for f in "$@"; do
        [ -e "${f}" ] || die "${f} not found: ${what}"
    done
}

# run_stage N: whether stage N is within --stage .. --stop_stage.
run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# stage_start N "name: details" ... stage_done: records each stage's wall-clock seconds in
# ${stage_times_dir}/stage_times.tsv (a re-run replaces its line).
stage_start() { _stage_t0=${SECONDS}; _stage_no=$1; _stage_name=${2%%:*}; log "Stage $1: $2"; }
stage_done() {
    local dt=$((SECONDS - _stage_t0)) f="${stage_times_dir}/stage_times.tsv"
    mkdir -p "${stage_times_dir}"
    { [ -f "${f}" ] && awk -F'\t' -v s="${_stage_no}" '$1 != s' "${f}"
      printf '%s\t%s\t%s\n' "${_stage_no}" "${_stage_name}" "${dt}"; } | sort -n -k1,1 > "${f}.tmp"
    mv "${f}.tmp" "${f}"
    log "Stage ${_stage_no} done in ${dt} s"
}

# check_common_options [NAME...]: the checks of the options asr.sh and cls.sh share, before anything
# runs: the data sets are given; stage, stop_stage, nj, inference_nj, num_nodes (and each NAME) are
# non-negative integers; audio_format, feats_normalize, ngpu and fs have a valid value (sets fs_hz);
# ${python} has espnet2 and this package; ngpu=auto becomes 1 when torch sees a GPU, else 0.
check_common_options() {
    local name
    [ -n "${train_set}" ] || die "--train_set is required"
    [ -n "${valid_set}" ] || die "--valid_set is required"
    [ -n "${test_sets}" ] || die "--test_sets is required"
    for name in stage stop_stage nj inference_nj num_nodes "$@"; do
        [[ "${!name}" =~ ^[0-9]+$ ]] || die "--${name} must be a non-negative integer, got '${!name}'"
    done
    [ "${nj}" -ge 1 ] && [ "${inference_nj}" -ge 1 ] || die "--nj and --inference_nj must be at least 1"
    case "${audio_format}" in flac|wav) ;; *) die "--audio_format must be flac or wav, got '${audio_format}'" ;; esac
    case "${feats_normalize}" in global_mvn|utterance_mvn|none) ;;
        *) die "--feats_normalize must be global_mvn, utterance_mvn or none, got '${feats_normalize}'" ;; esac
    if ! [[ "${ngpu}" =~ ^([0-9]+|auto)$ ]]; then die "--ngpu must be auto or a non-negative integer, got '${ngpu}'"; fi
    if [[ "${fs}" =~ ^([0-9]+)k$ ]]; then fs_hz=$((BASH_REMATCH[1] * 1000));
    elif [[ "${fs}" =~ ^[0-9]+$ ]]; then fs_hz=${fs};
    else die "--fs must be a rate like 16k or 16000, got '${fs}'"; fi
    "${python}" -c "import espnet2, espnet_summarymixing" 2>/dev/null \
        || die "'${python}' cannot import espnet2 and espnet_summarymixing: run ./install.sh at the repository root, or activate the environment that has them"
    if [ "${ngpu}" = auto ]; then
        ngpu=$("${python}" -c "import torch; print(1 if torch.cuda.is_available() else 0)")
    fi
}

# max_epoch_of CONFIG ARGS: the max_epoch of a training config, overridden by --max_epoch in ARGS.
max_epoch_of() {
    local n
    n=$(awk '/^max_epoch:/ { print $2 }' "$1")
    if [[ " $2 " =~ --max_epoch[=\ ]([0-9]+) ]]; then n=${BASH_REMATCH[1]}; fi
    echo "${n:-0}"
}

# run_training EXP MAX_EPOCH COMMAND...: runs COMMAND (ESPnet's launcher writing EXP/train.log) in the
# foreground with one progress line per finished epoch (Ctrl-C stops both); on success, adds its
# wall-clock seconds to EXP/train_time.txt. Returns COMMAND's status.
run_training() {
    local exp=$1 max_epoch=$2 t0=${SECONDS} follower status=0 previous
    shift 2
    mkdir -p "${exp}"
    [ -e "${exp}/checkpoint.pth" ] && log "resuming from ${exp}/checkpoint.pth"
    log "training log: ${exp}/train.log"
    "${python}" pyscripts/follow_training.py "${exp}/train.log" --pid $$ --max_epoch "${max_epoch}" &
    follower=$!
    "$@" || status=$?
    kill -TERM "${follower}" 2>/dev/null || true
    wait "${follower}" 2>/dev/null || true
    if [ "${status}" -eq 0 ]; then
        previous=$(cat "${exp}/train_time.txt" 2>/dev/null || echo 0)
        echo $((previous + SECONDS - t0)) > "${exp}/train_time.txt"
    fi
    return "${status}"
}

# aggregate_stats DIR N: ESPnet's aggregate_stats_dirs over DIR/logdir/stats.{1..N} into DIR.
aggregate_stats() {
    local dir=$1 n=$2 i dirs=()
    for i in $(seq "${n}"); do dirs+=(--input_dir "${dir}/logdir/stats.${i}"); done
    "${python}" -m espnet2.bin.aggregate_stats_dirs "${dirs[@]}" --output_dir "${dir}"
}

# split_jobs KEYS OUT_DIR N: KEYS's keys in N parts OUT_DIR/keys.{1..N}.scp.
split_jobs() {
    "${python}" pyscripts/data_dir.py split "$1" "$2" --nj "$3"
}
