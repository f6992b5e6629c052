# jax_peer_setup.sh — sourced by run_train_peers.sh and run_bdqn_peers.sh (ROOT set by the caller):
# the .venv-rejax peers' virtual environment (created on first use: rejax with gymnax 0.0.9, which
# bring jax, flax and optax), the qfleet binary ($QFLEET, default build/qfleet; relative paths from
# the current directory, else from the repository root), a short OpenMP spin, a temporary folder
# removed on exit, and median().
venv="$ROOT/.venv-rejax"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "gymnax==0.0.9" rejax
fi
qfleet="${QFLEET:-build/qfleet}"
case "$qfleet" in
  /*) ;;
  *) [ -x "$qfleet" ] && qfleet="$(pwd)/$qfleet" || qfleet="$ROOT/$qfleet" ;;
esac
[ -x "$qfleet" ] || { echo "no qfleet binary at $qfleet: build it (./test.sh or ./run.sh) or set QFLEET=..." >&2; exit 1; }
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-3000}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
