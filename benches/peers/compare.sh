#!/bin/sh
# Side-by-side comparison of gradlab and PyTorch on this machine.
#
#   benches/peers/compare.sh PYTHON [compare.py options...]
#
# PYTHON is an interpreter with torch installed. Builds the gradlab binary
# and the peer_conv example in release mode, then runs compare.py, which
# alternates gradlab and PyTorch (3 rounds, 2 threads each by default) and
# prints the ratio of medians per case. Not run by CI.
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 PYTHON [--rounds N] [--only steps|conv] [--json FILE]" >&2
    exit 2
fi
PY=$1
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cd "$ROOT"
cargo build --release -q -p gradlab
cargo build --release -q -p gradlab-benches --example peer_conv
exec "$PY" "$ROOT/benches/peers/compare.py" --python "$PY" \
    --gradlab "$TARGET/release/gradlab" --peer-conv "$TARGET/release/examples/peer_conv" "$@"
