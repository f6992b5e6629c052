#!/usr/bin/env bash
# plot-env.sh — make the Python environment of scripts/plot.py and scripts/tensorboard.py:
# a virtual environment (default .venv-plot in the repository; QFLEET_PLOT_VENV to move it) holding
# scripts/requirements-plot.txt from PyPI. Does nothing when the environment already holds exactly
# that file (its sha256 is kept inside); rebuilds it when the file changed. The scripts re-run
# themselves under this environment when the python that started them lacks the packages.
# Python: QFLEET_PYTHON, else python3 on PATH (3.9 or newer, with the venv module).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${QFLEET_PLOT_VENV:-$root/.venv-plot}"
req="$root/scripts/requirements-plot.txt"
py="${QFLEET_PYTHON:-python3}"
want="$(sha256sum "$req" | cut -d' ' -f1)"
stamp="$venv/qfleet-requirements.sha256"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v "$py" >/dev/null 2>&1 || { echo "plot-env.sh: $py not found (set QFLEET_PYTHON)" >&2; exit 1; }
echo "plot-env.sh: installing the plotting packages into $venv (scripts/requirements-plot.txt)" >&2
# the stamp is written last: an environment cut short is made again next time
rm -rf "$venv"
"$py" -m venv "$venv" || {
  rm -rf "$venv"; echo "plot-env.sh: '$py -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >"$venv.log" 2>&1 || {
  tail -n 20 "$venv.log" >&2; rm -rf "$venv"
  echo "plot-env.sh: pip install -r $req failed (log above, in $venv.log)" >&2; exit 1; }
rm -f "$venv.log"
echo "$want" >"$stamp"
