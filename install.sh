#!/usr/bin/env bash
# Create a virtual environment with the verified stack and this package (editable), on a
# machine that has only Python 3.9+ and the package registries. Re-running it is safe.
#   PYTHON=python3.11 VENV=.venv ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

log() { echo "[install.sh] $*"; }

[ -x "${VENV}/bin/python" ] || { log "creating ${VENV}"; "${PYTHON}" -m venv "${VENV}"; }
# pip >= 26.3 refuses ESPnet's dependency ci_sdr (a direct-URL requirement in one of its
# extras); 23.2.1 is the version the stack was verified with.
log "pinning pip 23.2.1"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "pip==23.2.1"
log "installing torch 2.9.1, torchaudio 2.9.1, espnet 202511, espnet_model_zoo (several GB the first time)"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch==2.9.1" "torchaudio==2.9.1" "espnet==202511" espnet_model_zoo
log "installing espnet-summarymixing with its test extra"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
"${VENV}/bin/python" - <<'PY'
import sys
assert "espnet_summarymixing._autoload" in sys.modules, "the start-up hook was not installed"
import espnet2.tasks.asr as asr
assert "summarymixing_conformer" in asr.encoder_choices.classes
print("[install.sh] ok: ESPnet knows encoder: summarymixing_conformer")
PY
