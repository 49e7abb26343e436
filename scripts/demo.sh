#!/usr/bin/env bash
# The main job: set up ./.venv, then run the live demo: the ROS 2 quality node with the default
# model, fed by a sample camera that streams real photos with hazy, blurred, dark and glared
# stretches; prints one line per frame and a summary. Extra arguments go to `hirqa demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export FASTDDS_BUILTIN_TRANSPORTS=${FASTDDS_BUILTIN_TRANSPORTS:-LARGE_DATA}
exec .venv/bin/hirqa demo "$@"
