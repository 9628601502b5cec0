#!/usr/bin/env bash
# Sourced by a recipe script after it has set its option variables to their defaults:
#     stage=1; nj=4; asr_config=conf/train.yaml
#     . utils/parse_options.sh
# Every `--name value` or `--name=value` (dashes in the name read as underscores) sets the shell
# variable `name`, which must already exist: an unknown option is an error that names it. Options
# end at the first argument that does not start with `--`, or after `--`; the remaining arguments
# stay in "$@". `--config FILE` sources FILE (lines like `nj=8`) before the following options, and
# `--help` prints the caller's ${help_message} and exits 0. A variable whose default is `true` or
# `false` only takes `true` or `false`.

_po_name=${0##*/}

_po_die() {
    echo "${_po_name}: $*" >&2
    echo "${_po_name}: run '$0 --help' to see the options" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        --help|-h)
            echo "${help_message:-No help message for ${_po_name}.}"
            exit 0 ;;
        --*=*) _po_opt=${1%%=*}; _po_value=${1#*=}; shift ;;
        --*)
            _po_opt=$1
            [ $# -ge 2 ] || _po_die "option ${_po_opt} needs a value"
            _po_value=$2
            shift 2 ;;
        *) break ;;
    esac
    _po_var=${_po_opt#--}
    _po_var=${_po_var//-/_}
    if [ "${_po_var}" = config ]; then
        [ -r "${_po_value}" ] || _po_die "--config ${_po_value}: no such readable file"
        # shellcheck disable=SC1090
        . "${_po_value}"
        continue
    fi
    [[ "${_po_var}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _po_die "invalid option name ${_po_opt}"
    [ -n "${!_po_var+set}" ] || _po_die "unknown option ${_po_opt}"
    case "${!_po_var}" in
        true|false)
            case "${_po_value}" in
                true|false) ;;
                *) _po_die "option ${_po_opt} takes true or false, got '${_po_value}'" ;;
            esac ;;
    esac
    printf -v "${_po_var}" '%s' "${_po_value}"
done
unset _po_opt _po_value _po_var
true
