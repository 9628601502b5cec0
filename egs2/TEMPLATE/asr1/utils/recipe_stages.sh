# The options and stages asr.sh and cls.sh share, written once: data preparation, speed perturbation,
# audio formatting, length filtering, feature statistics, training, packing and upload, and the loop that
# runs the stages. Sourced after utils/recipe_lib.sh (whose steps they are made of). A template script
#   1. calls common_options (the shared options at their defaults), sets its own, and lists its stages
#      by the --skip_* option that skips them (stage_group);
#   2. puts $(common_options_help) in its help_message and calls parse_recipe_options "$@";
#   3. checks its own options, calls set_common_names, derives its names and describes its model for
#      the shared stages:
#          task        ESPnet's task: espnet2.bin.${task}_train, pyscripts/train.py ${task}, --${task}_config
#          task_config task_args task_exp task_stats_dir: its --${task}_config, _args, _exp, _stats_dir
#          task_model  the model file of ${task_exp} that is decoded and packed
#          target      the data name of the text beside the speech (text, label); target_opts: ESPnet's
#                      options for it (token list and type...); target_fold_length: its fold length;
#                      target_shape_suffix: "" or, for ESPnet's asr.sh shapes, ".<token_type>" (the
#                      vocabulary size appended to each shape, see add_vocabulary_size)
#          pack_opts   (optional) more options of the pack command; pack_before: (optional) a command
#                      the packing stage runs first (asr.sh: the ONNX export)
#      then calls check_common_options;
#   4. defines a stage_<step> function for each of its own steps and calls run_stages.

# common_options: the shared options, at their defaults (common_options_help lists them).
common_options() {
    stage=1                  # first stage to run
    stop_stage=10000         # last stage to run
    ngpu=auto                # GPUs for training: auto = 1 if torch sees a GPU, else 0 (CPU)
    num_nodes=1              # nodes for training (several need a Slurm backend, see cmd.sh)
    nj=4                     # parallel jobs for audio formatting and statistics
    inference_nj=4           # parallel jobs for decoding or classifying
    gpu_inference=false      # decode or classify on GPUs
    dumpdir=dump             # where formatted audio goes
    expdir=exp               # where models and their outputs go
    python=python3           # the Python that has espnet and espnet_summarymixing
    local_data_opts=""       # options of local/data.sh
    speed_perturb_factors="" # speed perturbation of the training set (e.g. "0.9 1.0 1.1"; empty: none)
    audio_format=flac        # flac or wav, in ${dumpdir}/raw
    fs=16k                   # sampling rate everything is resampled to
    min_wav_duration=0.1     # training and validation recordings outside [min, max] seconds are dropped
    max_wav_duration=20      #   (the length filtering stage)
    feats_normalize=global_mvn  # global_mvn (the statistics stage's), utterance_mvn or none
    train_set=""             # data sets (set by run.sh)
    valid_set=""
    test_sets=""
    packed_model=model       # the packing stage writes ${task_exp}/${packed_model}.zip
    hf_repo=""               # user/name on the Hugging Face Hub (the upload stage)
}

# common_options_help: the help lines of the shared options, with their current values.
common_options_help() {
    cat <<EOF
  --stage (${stage}) --stop_stage (${stop_stage})
  --ngpu (${ngpu}) --num_nodes (${num_nodes}) --nj (${nj}) --inference_nj (${inference_nj})
  --gpu_inference (${gpu_inference}) --dumpdir (${dumpdir}) --expdir (${expdir}) --python (${python})
  --local_data_opts ("${local_data_opts}") --speed_perturb_factors ("${speed_perturb_factors}")
  --audio_format (${audio_format}) --fs (${fs}) --min_wav_duration (${min_wav_duration}) --max_wav_duration (${max_wav_duration})
  --feats_normalize (${feats_normalize})
  --train_set ("${train_set}") --valid_set ("${valid_set}") --test_sets ("${test_sets}")
  --packed_model (${packed_model}) --hf_repo ("${hf_repo}")
Jobs run through \${train_cmd}, \${cuda_cmd} and \${decode_cmd} of cmd.sh (local machine or Slurm).
EOF
}

# parse_recipe_options "$@": logs the command line (kept in ${run_args} for run_command.txt), reads the
# options (utils/parse_options.sh: --help prints ${help_message}), refuses other arguments, and sources
# the environment (path.sh) and the job runners (cmd.sh).
parse_recipe_options() {
    log "$0 $*"
    run_args=$(printf '%q ' "$0" "$@")
    . utils/parse_options.sh
    [ $# -eq 0 ] || { log "Error: unexpected argument(s): $*"; exit 2; }
    . ./path.sh
    . ./cmd.sh
}

# set_common_names: train_set_sp (the training set, speed-perturbed: <train_set>_sp, when
# --speed_perturb_factors is set) and data_feats (the formatted audio), as ESPnet's.
set_common_names() {
    if [ -n "${speed_perturb_factors}" ]; then train_set_sp="${train_set}_sp"; else train_set_sp="${train_set}"; fi
    data_feats=${dumpdir}/raw
}

# check_common_options [NAME...]: the checks of the shared options, before anything runs: the data sets
# are given; stage, stop_stage, nj, inference_nj, num_nodes (and each NAME) are non-negative integers;
# audio_format, feats_normalize, ngpu and fs have a valid value (sets fs_hz); --${task}_config exists, and
# is given when the statistics or the training stage will run; --stage .. --stop_stage holds a stage; --hf_repo is given when the upload will (will_run);
# ${python} has espnet2 and this package (last: it imports the Python stack); ngpu=auto becomes 1 when
# torch sees a GPU, else 0.
check_common_options() {
    local name
    [ -n "${train_set}" ] || die "--train_set is required"
    [ -n "${valid_set}" ] || die "--valid_set is required"
    [ -n "${test_sets}" ] || die "--test_sets is required"
    for name in stage stop_stage nj inference_nj num_nodes "$@"; do
        [[ "${!name}" =~ ^[0-9]+$ ]] || die "--${name} must be a non-negative integer, got '${!name}'"
    done
    if [ "${nj}" -lt 1 ] || [ "${inference_nj}" -lt 1 ]; then die "--nj and --inference_nj must be at least 1"; fi
    case "${audio_format}" in flac|wav) ;; *) die "--audio_format must be flac or wav, got '${audio_format}'" ;; esac
    case "${feats_normalize}" in global_mvn|utterance_mvn|none) ;;
        *) die "--feats_normalize must be global_mvn, utterance_mvn or none, got '${feats_normalize}'" ;; esac
    if ! [[ "${ngpu}" =~ ^([0-9]+|auto)$ ]]; then die "--ngpu must be auto or a non-negative integer, got '${ngpu}'"; fi
    if [[ "${fs}" =~ ^([0-9]+)k$ ]]; then fs_hz=$((BASH_REMATCH[1] * 1000));
    elif [[ "${fs}" =~ ^[0-9]+$ ]]; then fs_hz=${fs};
    else die "--fs must be a rate like 16k or 16000, got '${fs}'"; fi
    if [ -n "${task_config}" ] && [ ! -f "${task_config}" ]; then die "--${task}_config ${task_config}: no such file"; fi
    if [ -z "${task_config}" ] && { will_run stats || will_run train; }; then
        die "--${task}_config is required by stage ${stages[stats]} and stage ${stages[train]}"
    fi
    local step numbers="" selected=false
    for step in "${!stages[@]}"; do  # a range without any stage is a mistake (one skipped by --skip_* is not)
        numbers+=" ${stages[${step}]%% *}"
        if run_stage "$(step_no "${step}")"; then selected=true; fi
    done
    if ! "${selected}"; then
        die "--stage ${stage} --stop_stage ${stop_stage}: no stage in this range (the stages are$(tr ' ' '\n' <<<"${numbers}" | sort -n | tr '\n' ' ' | sed 's/ *$//')): nothing to do"
    fi
    if [ -z "${hf_repo}" ] && will_run upload; then
        die "--hf_repo user/name is required by stage ${stages[upload]} (--skip_upload true skips it)"
    fi
    "${python}" -c "import espnet2, espnet_summarymixing" 2>/dev/null \
        || die "'${python}' cannot import espnet2 and espnet_summarymixing: run ./install.sh at the repository root, or activate the environment that has them"
    if [ "${ngpu}" = auto ]; then
        ngpu=$("${python}" -c "import torch; print(1 if torch.cuda.is_available() else 0)")
    fi
}

# ---------------------------------------------------------------------------------------------
# The stage table of a script, and the loop that runs its stages.

# The names of the shared steps, in messages ("stage N (name) writes it").
declare -A shared_step_names=([data]="data preparation" [speed_perturb]="speed perturbation"
    [format]="audio formatting" [filter]="length filtering" [stats]="feature statistics" [train]="training"
    [pack]="packing" [upload]="upload")
declare -A stages=() stage_skip=()

# stage_group SKIP_OPTION "N STEP[ (NAME)]"...: the stages that --SKIP_OPTION skips. Stage N runs the
# function stage_STEP (run_stages); NAME (a shared step's own by default) names it in the message about a
# missing input, "FILE not found: stage N (NAME) writes it". Sets stages[STEP]="N (NAME)" (step_no,
# need_from) and stage_skip[STEP]=SKIP_OPTION.
stage_group() {
    local skip=$1 entry no step name
    shift
    for entry in "$@"; do
        no=${entry%% *} step=${entry#* } name=""
        if [[ "${step}" =~ ^([a-z_]+)\ \((.+)\)$ ]]; then step=${BASH_REMATCH[1]} name=${BASH_REMATCH[2]}; fi
        [ -n "${name}" ] || name=${shared_step_names[${step}]:-}
        [ -n "${name}" ] || die "stage_group: ${step} is not a shared step: name it, \"${no} ${step} (name)\""
        stages[${step}]="${no} (${name})"
        stage_skip[${step}]=${skip}
    done
}

# will_run STEP: whether STEP's stage is within --stage .. --stop_stage and its --skip_* option is false.
will_run() {
    local skip=${stage_skip[$1]}
    ! "${!skip}" && run_stage "$(step_no "$1")"
}

# run_stages: every stage that will_run, in the order of their numbers.
run_stages() {
    local order step
    order=$(for s in "${!stages[@]}"; do echo "${stages[${s}]%% *} ${s}"; done | sort -n | cut -d' ' -f2)
    for step in ${order}; do
        if will_run "${step}"; then "stage_${step}"; fi
    done
}

# ---------------------------------------------------------------------------------------------
# The stages. Each runs one whole stage (stage_start ... stage_done), stops with a message naming the
# stage on a failure, and can be run again: it rewrites what it writes.

# stage_data: local/data.sh ${local_data_opts}, then every set's data/<set> checked (wav.scp, text,
# utt2spk; pyscripts/data_dir.py validate).
stage_data() {
    local x
    stage_start data "data preparation: local/data.sh ${local_data_opts}"
    [ -x local/data.sh ] || stage_die "local/data.sh not found or not executable in $(pwd)"
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts} || stage_die "local/data.sh failed (see above)"
    # shellcheck disable=SC2086
    for x in $(unique_sets "${train_set}" "${valid_set}" ${test_sets}); do
        "${python}" pyscripts/data_dir.py validate "data/${x}" --need wav.scp,text,utt2spk \
            || stage_die "data/${x} is not a valid data directory (see above)"
    done
    stage_done
}

# speed_perturb: data/${train_set} -> data/${train_set_sp}, one copy per --speed_perturb_factors factor
# (nothing when it is empty).
speed_perturb() {
    [ -n "${speed_perturb_factors}" ] || return 0
    need_from data "data/${train_set}/wav.scp"
    log "speed perturbation of data/${train_set} by ${speed_perturb_factors}"
    # shellcheck disable=SC2086
    "${python}" pyscripts/data_dir.py speed_perturb "data/${train_set}" "data/${train_set_sp}" \
        --factors ${speed_perturb_factors} || stage_die "speed perturbation of data/${train_set} failed (see above)"
}

# stage_speed_perturb: the speed perturbation as a stage of its own (asr.sh's stage 2; logged as skipped
# when --speed_perturb_factors is empty). A script without this step (cls.sh) has stage_format do it.
stage_speed_perturb() {
    if [ -z "${speed_perturb_factors}" ]; then
        log "Stage $(step_no speed_perturb): no speed perturbation (--speed_perturb_factors is empty): skipped"
        return 0
    fi
    stage_start speed_perturb "speed perturbation of data/${train_set} by ${speed_perturb_factors}"
    speed_perturb
    stage_done
}

# stage_format: every set's audio resampled to --fs in --audio_format (pyscripts/format_audio.py,
# --nj jobs; audio already formatted is kept) into ${data_feats}: the training and validation sets into
# org/ (the length filtering reads them there), the others in place; a set listed twice is done once.
# The speed perturbation first, when it is no stage of its own.
stage_format() {
    local x out
    stage_start format "formatting audio into ${data_feats} (${audio_format}, ${fs_hz} Hz)"
    if [ -z "${stages[speed_perturb]:-}" ]; then speed_perturb; fi
    # shellcheck disable=SC2086
    for x in $(unique_sets "${train_set_sp}" "${valid_set}" ${test_sets}); do
        if [ "${x}" = "${train_set_sp}" ] || [ "${x}" = "${valid_set}" ]; then out="${data_feats}/org/${x}"; else out="${data_feats}/${x}"; fi
        if [ -n "${speed_perturb_factors}" ] && [ "${x}" = "${train_set_sp}" ] && [ -n "${stages[speed_perturb]:-}" ]; then
            need_from speed_perturb "data/${x}/wav.scp"
        else
            need_from data "data/${x}/wav.scp"
        fi
        "${python}" pyscripts/format_audio.py --data "data/${x}" --out "${out}" --fs "${fs_hz}" \
            --audio_format "${audio_format}" --nj "${nj}" || stage_die "formatting data/${x} failed (see above)"
    done
    stage_done
}

# stage_filter: the training and validation sets without the recordings shorter than
# --min_wav_duration or longer than --max_wav_duration: ${data_feats}/org/<set> -> ${data_feats}/<set>.
stage_filter() {
    local x
    stage_start filter "removing training and validation recordings shorter than ${min_wav_duration} s or longer than ${max_wav_duration} s"
    for x in "${train_set_sp}" "${valid_set}"; do
        need_from format "${data_feats}/org/${x}/utt2num_samples"
        "${python}" pyscripts/data_dir.py filter "${data_feats}/org/${x}" "${data_feats}/${x}" --fs "${fs_hz}" \
            --min_seconds "${min_wav_duration}" --max_seconds "${max_wav_duration}" \
            || stage_die "filtering ${data_feats}/org/${x} failed (see above)"
    done
    stage_done
}

# task_data_opts: the training and validation data options of ESPnet's ${task}_train, in the array
# task_data: speech (wav.scp) and ${target} (text) of ${train_set_sp} and ${valid_set}.
task_data_opts() {
    local part set
    task_data=()
    for part in train valid; do
        if [ "${part}" = train ]; then set=${train_set_sp}; else set=${valid_set}; fi
        task_data+=("--${part}_data_path_and_name_and_type" "${data_feats}/${set}/wav.scp,speech,sound"
                    "--${part}_data_path_and_name_and_type" "${data_feats}/${set}/text,${target},text")
    done
}

# stage_stats: ESPnet's collect_stats of ${task} on the training and validation sets (collect_stats)
# into ${task_stats_dir}: speech_shape, ${target}_shape (with the vocabulary size when
# ${target_shape_suffix} is set) and feats_stats.npz (--feats_normalize global_mvn reads it).
stage_stats() {
    stage_start stats "feature statistics: ${task_stats_dir}"
    need_from filter "${data_feats}/${train_set_sp}/wav.scp" "${data_feats}/${valid_set}/wav.scp"
    need_from token_list "${token_list}"
    task_data_opts
    # shellcheck disable=SC2086
    collect_stats "${task_stats_dir}" "${data_feats}/${train_set_sp}/wav.scp" "${data_feats}/${valid_set}/wav.scp" \
        "espnet2.bin.${task}_train" "${target_opts[@]}" "${task_data[@]}" \
        --config "${task_config}" --frontend_conf fs="${fs}" ${task_args}
    if [ -n "${target_shape_suffix}" ]; then
        add_vocabulary_size "${task_stats_dir}" "${target}" "${target_shape_suffix}" "${token_list}"
    fi
    stage_done
}

# stage_train: ESPnet's ${task} training (launch_training: --ngpu GPUs, --num_nodes nodes, progress
# lines) into ${task_exp}, resumed from its last finished epoch when run again; the command line is kept
# in ${task_exp}/run_command.txt (RESULTS.md shows it).
stage_train() {
    local shape=${target}_shape${target_shape_suffix} normalize=()
    stage_start train "training: ${task_exp} (${ngpu} GPU(s), ${num_nodes} node(s))"
    need_from stats "${task_stats_dir}/train/speech_shape" "${task_stats_dir}/train/${shape}"
    case "${feats_normalize}" in
        # On the command line, not in the YAML: the YAML is also read by the statistics stage, which writes this file.
        global_mvn) normalize=(--normalize global_mvn --normalize_conf "stats_file=${task_stats_dir}/train/feats_stats.npz") ;;
        *) normalize=(--normalize "${feats_normalize}") ;;
    esac
    task_data_opts
    mkdir -p "${task_exp}"
    echo "${run_args}" > "${task_exp}/run_command.txt"
    launch_training "${task_exp}" "${task}" "${task_config}" "${task_args}" "${target_opts[@]}" "${task_data[@]}" \
        --train_shape_file "${task_stats_dir}/train/speech_shape" --train_shape_file "${task_stats_dir}/train/${shape}" \
        --valid_shape_file "${task_stats_dir}/valid/speech_shape" --valid_shape_file "${task_stats_dir}/valid/${shape}" \
        --fold_length 80000 --fold_length "${target_fold_length}" --frontend_conf fs="${fs}" "${normalize[@]}" \
        || stage_die "training failed, see ${task_exp}/train.log (re-running stage $(step_no train) resumes from the last finished epoch)"
    stage_done
}

# need_model: the trained model (${task_exp}/config.yaml and ${task_exp}/${task_model}) exists, else stop
# naming the training stage.
need_model() {
    need_from train "${task_exp}/config.yaml" "${task_exp}/${task_model}"
}

# stage_pack: ${task_exp}/${packed_model}.zip (python -m espnet_summarymixing.pack) from the trained
# model, its config and, when there, RESULTS.md, with the options ${pack_opts[@]}; ${pack_before} (a
# command of the script's, e.g. an export whose output pack_opts names) runs first, after the checks.
stage_pack() {
    local kind opts=()
    stage_start pack "packing ${task_exp}/${packed_model}.zip"
    need_model
    if [ -n "${pack_before:-}" ]; then ${pack_before}; fi
    case "${task}" in asr) kind=asr ;; cls) kind=classification ;; *) stage_die "no packing for task '${task}'" ;; esac
    [ -f "${task_exp}/RESULTS.md" ] && opts+=(--results "${task_exp}/RESULTS.md")
    "${python}" -m espnet_summarymixing.pack --${kind}_train_config "${task_exp}/config.yaml" \
        --${kind}_model_file "${task_exp}/${task_model}" "${opts[@]}" ${pack_opts[@]+"${pack_opts[@]}"} \
        --training_data "$(basename "$(dirname "$(pwd)")") ${train_set_sp}" \
        --output "${task_exp}/${packed_model}.zip" || stage_die "packing failed (see above)"
    stage_done
}

# stage_upload: ${task_exp}/${packed_model}.zip to the Hugging Face Hub repository --hf_repo.
stage_upload() {
    stage_start upload "uploading ${task_exp}/${packed_model}.zip to the Hugging Face Hub"
    need_from pack "${task_exp}/${packed_model}.zip"
    "${python}" -m espnet_summarymixing.upload --model "${task_exp}/${packed_model}.zip" --repo "${hf_repo}" \
        || stage_die "uploading to ${hf_repo} failed (see above)"
    stage_done
}
