#!/usr/bin/env bash
# MPI checks of gradlab-dist: builds examples/mpi_check with the `mpi` feature
# and runs it through mpirun. Needs Open MPI (mpirun, headers, library) and
# libclang; cargo's default test run does not use MPI.
#
#   check on 2 ranks        every check passes (exit 0)
#   check on 4 ranks        the same with more ranks; from 3 ranks on, summing
#                           in another order than rank order changes the bits
#   exit on 2 ranks         rank 1 exits with status 3 mid-run: mpirun must end
#                           the job with a non-zero status, rank 0 must not hang
#   abort on 3 ranks        rank 1 calls abort(5, ..): the same
#
# Every run is bounded by `timeout`; status 124 means a hang. Prints
# `mpi: P passed, F failed` and exits non-zero if any case failed.
set -uo pipefail
cd "$(dirname "$0")/../../../.."

LIMIT="${MPI_CHECK_TIMEOUT:-60}"
echo "building the MPI check (cargo build -p gradlab-dist --features mpi --example mpi_check)"
bin=$(cargo build -p gradlab-dist --features mpi --example mpi_check --locked \
    --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*mpi_check[^"]*\)".*/\1/p' | tail -n 1)
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "mpi: the build of mpi_check failed" >&2
    echo "mpi: 0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_case NAME EXPECT NP MODE: EXPECT is "zero" or "nonzero".
run_case() {
    local name=$1 expect=$2 np=$3 mode=$4 status ok
    timeout "$LIMIT" mpirun --oversubscribe --allow-run-as-root -np "$np" "$bin" "$mode" \
        2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    if [[ $status -eq 124 ]]; then
        ok=no
        echo "mpi: $name: no end within ${LIMIT}s (a rank hangs)"
    elif grep -q "although rank 1 has left" "$log"; then
        # A collective returned instead of waiting for the rank that left.
        ok=no
    elif [[ $expect == zero && $status -eq 0 ]] || [[ $expect == nonzero && $status -ne 0 ]]; then
        ok=yes
    else
        ok=no
    fi
    if [[ $ok == yes ]]; then
        passed=$((passed + 1))
        echo "mpi: $name: ok (exit status $status)"
    else
        failed=$((failed + 1))
        echo "mpi: $name: FAILED (exit status $status, expected $expect)"
    fi
}

run_case "check, 2 ranks" zero 2 check
run_case "check, 4 ranks" zero 4 check
run_case "rank 1 exits mid-run, 2 ranks" nonzero 2 exit
run_case "rank 1 aborts mid-run, 3 ranks" nonzero 3 abort

echo "mpi: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
