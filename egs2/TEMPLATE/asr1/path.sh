# Sourced by asr.sh and the recipe scripts: the environment every stage runs in.
# The Python must have espnet and espnet_summarymixing: if the python3 on PATH (an activated virtual
# or conda environment) does not have this package, the repository's .venv (./install.sh) is used.
if ! python3 -c 'import importlib.util as u, sys; sys.exit(u.find_spec("espnet_summarymixing") is None)' 2>/dev/null; then
    _repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
    if [ -f "${_repo_root}/.venv/bin/activate" ]; then
        # shellcheck disable=SC1091
        . "${_repo_root}/.venv/bin/activate"
    fi
    unset _repo_root
fi
export PATH="${PWD}/utils:${PATH}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
