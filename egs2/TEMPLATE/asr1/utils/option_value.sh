#!/usr/bin/env bash
# Prints the value that asr.sh would give option NAME from the command line ARGS, or nothing when the
# ARGS do not set it:
#     utils/option_value.sh NAME [ARGS...]
# ARGS are read as utils/parse_options.sh reads them: `--name value` or `--name=value`, '-' and '_'
# alike in names, the last one counts, options end at `--` or at the first argument that is not an
# option (a `--config FILE` is not read). For a recipe's run.sh whose defaults depend on an option it
# hands on to asr.sh, e.g.
#     if [ "$(utils/option_value.sh use_lm "$@")" = true ]; then inference_config=conf/decode_asr_lm.yaml; fi
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 NAME [ARGS...]" >&2; exit 2; }
name=${1//-/_}
shift
value=
while [ $# -gt 0 ]; do
    case "$1" in
        --|--help|-h) break ;;
        --*=*) opt=${1%%=*}; val=${1#*=}; shift ;;
        --*) [ $# -ge 2 ] || break; opt=$1; val=$2; shift 2 ;;
        *) break ;;
    esac
    opt=${opt#--}
    if [ "${opt//-/_}" = "${name}" ]; then value=${val}; fi
done
printf '%s\n' "${value}"
