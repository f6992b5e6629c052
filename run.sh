#!/usr/bin/env bash
# run.sh — set up on first use (packages, build), then run qfleet. With no arguments: the main job,
# on the GPU when one is usable, else on the CPU. Arguments go to qfleet (e.g. ./run.sh envs).
set -euo pipefail
QF_BUILD_TARGET=qfleet . "$(dirname "$0")/scripts/setup.sh"
exec "$BUILD_DIR/qfleet" "$@"
