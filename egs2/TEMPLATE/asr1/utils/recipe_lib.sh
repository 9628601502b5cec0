# Helpers of the template scripts (asr.sh, cls.sh), sourced before their options are set:
#     recipe_name=cls.sh; . utils/recipe_lib.sh; . utils/recipe_stages.sh
# utils/recipe_stages.sh holds the options and the stages the two scripts share; this file the steps
# they are made of. The caller sets ${recipe_name} (for messages), the options (${stage}, ${python},
# ${nj}...), its stages (utils/recipe_stages.sh's stage_group) and, before the first stage_done, ${task_exp}
# (the experiment folder that keeps stage_times.tsv).

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${recipe_name}) $*"
}

die() {
    log "Error: $*"
    exit 1
}

# stage_die MESSAGE: stop with "stage N: MESSAGE", N the stage that is running (stage_start).
stage_die() {
    die "stage ${_stage_no:-?}: $*"
}

# The smallest of its integer arguments.
min() {
    local m=$1 x
    for x in "$@"; do [ "${x}" -lt "${m}" ] && m=${x}; done
    echo "${m}"
}

# unique_sets NAME...: the names, each once, in their first order (ESPnet's habit of listing the
# validation set among the test sets must not do a job twice).
unique_sets() {
    printf '%s\n' "$@" | awk 'NF && !seen[$0]++'
}

# need WHAT FILE...: every FILE exists, else stop naming the stage that produces it (WHAT).
need() {
    local what=$1 f
    shift
    for f in "$@"; do
        [ -e "${f}" ] || die "${f} not found: ${what}"
    done
}

# step_no STEP: the number of the stage that does STEP (utils/recipe_stages.sh's stage_group).
step_no() {
    echo "${stages[$1]%% *}"
}

# need_from STEP FILE...: every FILE exists, else stop with "FILE not found: stage N (name) writes it".
need_from() {
    local step=$1
    shift
    need "stage ${stages[${step}]} writes it" "$@"
}

# need_data SET FILE...: every FILE (of ${data_feats}/SET) exists, else stop naming the stage that writes
# it: the length filtering for the training and validation sets, the audio formatting for the others.
need_data() {
    local set=$1
    shift
    if [ "${set}" = "${train_set_sp}" ] || [ "${set}" = "${valid_set}" ]; then need_from filter "$@"; else need_from format "$@"; fi
}

# run_stage N: whether stage N is within --stage .. --stop_stage.
run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# stage_start STEP "name: details" ... stage_done: logs the start of STEP's stage and records its
# wall-clock seconds in ${task_exp}/stage_times.tsv (a re-run replaces its line) under "name".
stage_start() { _stage_t0=${SECONDS}; _stage_no=$(step_no "$1"); _stage_name=${2%%:*}; log "Stage ${_stage_no}: $2"; }
stage_done() {
    local dt=$((SECONDS - _stage_t0)) f="${task_exp}/stage_times.tsv"
    mkdir -p "${task_exp}"
    { [ -f "${f}" ] && awk -F'\t' -v s="${_stage_no}" '$1 != s' "${f}"
      printf '%s\t%s\t%s\n' "${_stage_no}" "${_stage_name}" "${dt}"; } | sort -n -k1,1 > "${f}.tmp"
    mv "${f}.tmp" "${f}"
    log "Stage ${_stage_no} done in ${dt} s"
}

# stage_done_with_results SCRIPT: stage_done, then SCRIPT (pyscripts/collect_results.py, cls_results.py)
# writes ${task_exp}/RESULTS.md, which is shown; after stage_done, so that its stage table has this stage.
stage_done_with_results() {
    stage_done
    "${python}" "$1" --exp_dir "${task_exp}" --out "${task_exp}/RESULTS.md" || die "$1 failed (see above)"
    cat "${task_exp}/RESULTS.md"
}

# max_epoch_of CONFIG ARGS: the max_epoch of a training config (none: 0), overridden by --max_epoch in ARGS.
max_epoch_of() {
    local n=""
    [ -z "$1" ] || n=$(awk '/^max_epoch:/ { print $2 }' "$1")
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

# launch_training EXP TASK CONFIG ARGS [OPTION...]: pyscripts/train.py TASK (ESPnet's ${TASK}_train)
# through ESPnet's launcher on ${cuda_cmd} (--ngpu GPUs, --num_nodes nodes), into EXP, resumed from
# EXP's last finished epoch, with run_training's progress lines; OPTIONs (data, shapes...), then
# --config CONFIG (when given) and the user's ARGS (word-split) are the trainer's. Returns its status.
launch_training() {
    local exp=$1 task=$2 config=$3 args=$4
    shift 4
    # shellcheck disable=SC2086
    run_training "${exp}" "$(max_epoch_of "${config}" "${args}")" \
    "${python}" -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${exp}")" --log "${exp}/train.log" \
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${exp}/.dist_init_" \
        --multiprocessing_distributed true -- \
        "${python}" pyscripts/train.py "${task}" --use_preprocessor true "$@" --resume true --output_dir "${exp}" \
            --use_tensorboard false --use_wandb false ${config:+--config "${config}"} ${args}
}

# split_jobs KEYS OUT_DIR N: KEYS's keys in N parts OUT_DIR/keys.{1..N}.scp.
split_jobs() {
    "${python}" pyscripts/data_dir.py split "$1" "$2" --nj "$3"
}

# collect_stats DIR TRAIN_KEYS VALID_KEYS MODULE [OPTION...]: ESPnet's collect_stats of MODULE (e.g.
# espnet2.bin.asr_train) run by ${train_cmd} in parallel jobs (at most --nj; no more than the training
# or validation set has keys), each over one part of the keys of TRAIN_KEYS and VALID_KEYS, then
# aggregated into DIR (DIR/{train,valid}/<name>_shape, feats_stats.npz). OPTIONs: MODULE's data,
# preprocessing and config options. DIR/logdir is made anew: a re-run gives the same result.
collect_stats() {
    local dir=$1 train_keys=$2 valid_keys=$3 module=$4 logdir=$1/logdir n i inputs=()
    shift 4
    n=$(min "${nj}" "$(wc -l < "${train_keys}")" "$(wc -l < "${valid_keys}")")
    [ "${n}" -ge 1 ] || stage_die "${train_keys} or ${valid_keys} is empty"
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    split_jobs "${train_keys}" "${logdir}/train" "${n}"
    split_jobs "${valid_keys}" "${logdir}/valid" "${n}"
    log "collecting statistics in ${n} jobs, logs in ${logdir}/stats.*.log"
    ${train_cmd} JOB=1:"${n}" "${logdir}/stats.JOB.log" \
        "${python}" -m "${module}" --collect_stats true --use_preprocessor true \
            --train_shape_file "${logdir}/train/keys.JOB.scp" --valid_shape_file "${logdir}/valid/keys.JOB.scp" \
            --output_dir "${logdir}/stats.JOB" "$@" \
        || stage_die "statistics failed, see ${logdir}/stats.*.log"
    for i in $(seq "${n}"); do inputs+=(--input_dir "${logdir}/stats.${i}"); done
    "${python}" -m espnet2.bin.aggregate_stats_dirs "${inputs[@]}" --output_dir "${dir}" \
        || stage_die "aggregating the statistics into ${dir} failed (see above)"
}

# add_vocabulary_size DIR NAME SUFFIX VOCABULARY: DIR/{train,valid}/NAME_shape with the size of the
# VOCABULARY file (lines) appended to every shape, as DIR/{train,valid}/NAME_shapeSUFFIX (ESPnet's
# asr.sh: text_shape.bpe, read by the batch bins).
add_vocabulary_size() {
    local dir=$1 name=$2 suffix=$3 size x
    size=$(wc -l < "$4")
    for x in train valid; do
        awk -v N="${size}" '{ print $0 "," N }' "${dir}/${x}/${name}_shape" > "${dir}/${x}/${name}_shape${suffix}"
    done
}

# run_inference SETS PREFIX RESULT FILES MODULE [OPTION...]: ESPnet's inference MODULE (e.g.
# espnet2.bin.asr_inference) over ${data_feats}/SET/wav.scp of each of SETS (space-separated) in at most
# --inference_nj jobs (${decode_cmd}, or ${cuda_cmd} with --gpu_inference true); each job loads the model
# once and does its part of every set, so more than one set needs a MODULE with --also (the classification
# template's pyscripts.cls_inference). Jobs run on this machine (utils/run.pl) share its cores: each gets
# cores / jobs threads (OMP_NUM_THREADS, unless set), as 2 jobs of 2 threads on 2 cores run slower than 2 of
# 1. Logs: PREFIX/<first set>/logdir/<module>.*.log; each of FILES
# (space-separated) of the jobs' output.N/RESULT/ merged into PREFIX/SET, sorted by key. OPTIONs: MODULE's
# model options. Each PREFIX/SET/logdir is made anew: a re-run gives the same result.
run_inference() {
    local sets=$1 prefix=$2 result=$3 files=$4 module=$5 cmd=${decode_cmd} gpus=0 name=${5##*.}
    local n=${inference_nj} total=0 set first="" also=() logdir f i threads=() count
    shift 5
    for set in ${sets}; do
        need_data "${set}" "${data_feats}/${set}/wav.scp"
        count=$(wc -l < "${data_feats}/${set}/wav.scp")
        n=$(min "${n}" "${count}")
        total=$((total + count))
    done
    [ "${n}" -ge 1 ] || stage_die "a wav.scp of ${sets} is empty"
    for set in ${sets}; do
        logdir=${prefix}/${set}/logdir
        rm -rf "${logdir}"
        split_jobs "${data_feats}/${set}/wav.scp" "${logdir}" "${n}"
        if [ -z "${first}" ]; then first=${set}; continue; fi
        also+=(--also "${data_feats}/${set}/wav.scp,${logdir}/keys.JOB.scp,${logdir}/output.JOB")
    done
    logdir=${prefix}/${first}/logdir
    if "${gpu_inference}"; then cmd="${cuda_cmd} --gpu 1"; gpus=1; fi
    if [ "${cmd}" = utils/run.pl ] && [ -z "${OMP_NUM_THREADS:-}" ]; then
        threads=(env OMP_NUM_THREADS="$(( $(nproc) / n > 1 ? $(nproc) / n : 1 ))")
    fi
    log "${name} on ${sets}: ${total} recordings in ${n} jobs, logs in ${logdir}/${name}.*.log"
    ${cmd} JOB=1:"${n}" "${logdir}/${name}.JOB.log" \
        "${threads[@]}" "${python}" -m "${module}" --batch_size 1 --ngpu "${gpus}" \
            --data_path_and_name_and_type "${data_feats}/${first}/wav.scp,speech,sound" --key_file "${logdir}/keys.JOB.scp" \
            --output_dir "${logdir}/output.JOB" "${also[@]}" "$@" \
        || stage_die "${name} on ${sets} failed, see ${logdir}/${name}.*.log"
    for set in ${sets}; do
        logdir=${prefix}/${set}/logdir
        for f in ${files}; do
            for i in $(seq "${n}"); do
                if [ -f "${logdir}/output.${i}/${result}/${f}" ]; then cat "${logdir}/output.${i}/${result}/${f}"; fi
            done | LC_ALL=C sort -k1,1 > "${prefix}/${set}/${f}"
        done
        log "${prefix}/${set}/text: $(wc -l < "${prefix}/${set}/text") results"
    done
}
