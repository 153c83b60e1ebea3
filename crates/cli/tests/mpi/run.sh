#!/usr/bin/env bash
# Data-parallel training through mpirun: builds the gradlab binary with
# `--features mpi` and runs it on 2 processes over the loopback. Needs Open
# MPI (mpirun, headers, library) and libclang; cargo's default test run does
# not use MPI (the same properties are tested over threads in
# crates/train/tests/parallel.rs).
#
#   same as one process   2 ranks x 32 without BatchNorm: every step's loss
#                         equals the one-process run with batch 64 to 1e-5
#                         relative, and so do the held-out figures
#   resume                a 2-rank run stopped after epoch 1 and resumed
#                         equals the uninterrupted 2-rank run: checkpoint and
#                         metrics log byte for byte (a ResNet with BatchNorm)
#   resume on 1 rank      the 2-rank checkpoint continues on one process
#   killed rank           rank 1 killed with SIGKILL mid-run: mpirun ends
#                         with a non-zero status within seconds
#   unreadable data       rank 1 cannot read its data: exit status 1, rank 0
#                         names rank 1 and its error
#   uneven batch          --batch 63 on 2 ranks: exit status 2
#   other config          ranks started with other seeds: exit status 2
#   bench                 `gradlab bench` on 2 MPI ranks reports the scaling
#
# Every run is bounded by `timeout`; status 124 means a hang. Prints
# `mpi-train: P passed, F failed` and exits non-zero if any case failed.
set -uo pipefail
cd "$(dirname "$0")/../../../.."

LIMIT="${MPI_CHECK_TIMEOUT:-120}"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
echo "building gradlab with MPI (cargo build -p gradlab --features mpi)"
bin=$(cargo build -p gradlab --features mpi --bin gradlab --locked \
    --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*gradlab\)".*/\1/p' | tail -n 1)
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "mpi-train: the build of gradlab --features mpi failed" >&2
    echo "mpi-train: 0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ok() {
    passed=$((passed + 1))
    echo "mpi-train: $1: ok"
}

fail() {
    failed=$((failed + 1))
    echo "mpi-train: $1: FAILED ($2)"
}

# run NAME LOG ARGS...: runs ARGS under `timeout`, output to LOG; sets $status.
run() {
    local name=$1 log=$2
    shift 2
    timeout "$LIMIT" "$@" >"$log" 2>&1
    status=$?
    if [[ $status -eq 124 ]]; then
        echo "mpi-train: $name: no end within ${LIMIT}s (a rank hangs)"
        cat "$log"
    fi
}

MLP=(--model plain-mlp:depth=3,width=32 --data digits:size=8 --seed 4 --lr 0.05)
RESNET=(--model resnet:depth=8,width=4 --data digits:size=8 --seed 4 --batch 32)

# --- 2 ranks equal one process ---------------------------------------------
d="$work/same"
mkdir -p "$d"
run "same as one process" "$d/mpi.out" "${MPIRUN[@]}" -np 2 "$bin" train "${MLP[@]}" \
    --epochs 2 --batch 64 --log "$d/mpi.csv"
mpi_status=$status
run "same as one process" "$d/one.out" "$bin" train "${MLP[@]}" --epochs 2 --batch 64 \
    --log "$d/one.csv"
if [[ $mpi_status -ne 0 || $status -ne 0 ]]; then
    fail "same as one process" "exit status $mpi_status (mpirun), $status (one process)"
    cat "$d/mpi.out" "$d/one.out"
elif ! grep -q "ranks 2, per-rank batch 32, threads per rank" "$d/mpi.out"; then
    fail "same as one process" "no start report"
    cat "$d/mpi.out"
else
    # Step, then the loss of both logs, side by side.
    worst=$(paste -d, <(cut -d, -f1,3 "$d/one.csv") <(cut -d, -f1,3 "$d/mpi.csv") | awk -F, '
        NR == 1 { next }
        $1 != $3 { print "steps differ: " $0; bad = 1; exit }
        { r = ($2 - $4) / $2; if (r < 0) r = -r; if (r > w) w = r }
        END { if (!bad) printf "%.3g\n", w + 0 }')
    rows=$(($(wc -l <"$d/one.csv") - 1))
    held_one=$(grep '^held-out' "$d/one.out")
    held_mpi=$(grep '^held-out' "$d/mpi.out")
    if [[ $rows -lt 10 || $(wc -l <"$d/mpi.csv") -ne $((rows + 1)) ]]; then
        fail "same as one process" "logs of $rows and $(wc -l <"$d/mpi.csv") lines"
    elif ! awk -v w="$worst" 'BEGIN { exit !(w + 0 <= 1e-5) }'; then
        fail "same as one process" "losses differ by $worst relative"
    elif [[ "$held_one" != "$held_mpi" ]]; then
        fail "same as one process" "'$held_one' against '$held_mpi'"
    elif ! head -n 1 "$d/mpi.csv" | grep -q noise_scale; then
        fail "same as one process" "no noise_scale column in the 2-rank log"
    else
        ok "same as one process (losses within $worst relative over $rows steps)"
    fi
fi

# --- resume under MPI, bit for bit -------------------------------------------
d="$work/resume"
mkdir -p "$d/whole" "$d/parts"
run "resume" "$d/whole.out" "${MPIRUN[@]}" -np 2 "$bin" train "${RESNET[@]}" --epochs 2 \
    --checkpoint "$d/whole/ck.safetensors" --log "$d/whole/log.csv"
whole_status=$status
run "resume" "$d/first.out" "${MPIRUN[@]}" -np 2 "$bin" train "${RESNET[@]}" --epochs 1 \
    --checkpoint "$d/parts/ck.safetensors" --log "$d/parts/log.csv"
first_status=$status
cp "$d/parts/ck.safetensors" "$d/after-epoch-1.safetensors"
cp "$d/parts/log.csv" "$d/after-epoch-1.csv"
run "resume" "$d/second.out" "${MPIRUN[@]}" -np 2 "$bin" train "${RESNET[@]}" --epochs 2 \
    --checkpoint "$d/parts/ck.safetensors" --log "$d/parts/log.csv" --resume
if [[ $whole_status -ne 0 || $first_status -ne 0 || $status -ne 0 ]]; then
    fail "resume" "exit status $whole_status, $first_status, $status"
    cat "$d/whole.out" "$d/first.out" "$d/second.out"
elif ! grep -q "resuming from" "$d/second.out"; then
    fail "resume" "the second part did not resume"
elif ! cmp "$d/whole/ck.safetensors" "$d/parts/ck.safetensors"; then
    fail "resume" "the checkpoints differ"
elif ! cmp "$d/whole/log.csv" "$d/parts/log.csv"; then
    fail "resume" "the logs differ"
else
    ok "resume (checkpoint and log byte for byte)"
fi

# --- a 2-rank checkpoint resumes on one process ------------------------------
run "resume on 1 rank" "$d/one.out" "$bin" train "${RESNET[@]}" --epochs 2 \
    --checkpoint "$d/after-epoch-1.safetensors" --log "$d/after-epoch-1.csv" --resume
if [[ $status -eq 0 ]] && grep -q "^final: step" "$d/one.out"; then
    ok "resume on 1 rank"
else
    fail "resume on 1 rank" "exit status $status"
    cat "$d/one.out"
fi

# --- a rank killed mid-run ends the job --------------------------------------
d="$work/killed"
mkdir -p "$d"
start=$(date +%s)
timeout "$LIMIT" "${MPIRUN[@]}" -np 2 "$bin" train "${MLP[@]}" --epochs 1000 --batch 64 \
    --log "$d/log.csv" >"$d/out" 2>&1 &
job=$!
# Wait for a few steps, then find rank 1 among our processes by its environment.
victim=""
for _ in $(seq 1 200); do
    if [[ -f "$d/log.csv" && $(wc -l <"$d/log.csv") -gt 5 ]]; then
        for pid in $(pgrep -f -- "--log $d/log.csv" || true); do
            if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == gradlab ]] &&
                tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
                victim=$pid
            fi
        done
        [[ -n "$victim" ]] && break
    fi
    sleep 0.1
done
if [[ -z "$victim" ]]; then
    wait "$job"
    fail "killed rank" "rank 1's process was not found"
    cat "$d/out"
else
    killed_at=$(date +%s)
    kill -KILL "$victim"
    wait "$job"
    status=$?
    took=$(($(date +%s) - killed_at))
    if [[ $status -eq 124 ]]; then
        fail "killed rank" "no end within ${LIMIT}s after the kill"
    elif [[ $status -eq 0 ]]; then
        fail "killed rank" "exit status 0"
    elif [[ $took -gt 30 ]]; then
        fail "killed rank" "the job took ${took}s to end"
    else
        ok "killed rank (exit status $status, ended ${took}s after the kill)"
    fi
fi
echo "(killed-rank case took $(($(date +%s) - start))s in all)"

# --- a rank that cannot read its data ----------------------------------------
d="$work/unreadable"
mkdir -p "$d"
run "unreadable data" "$d/out" "${MPIRUN[@]}" \
    -np 1 "$bin" train "${MLP[@]}" --batch 64 : \
    -np 1 "$bin" train --model plain-mlp:depth=3,width=32 --data "cifar:$d/missing" --seed 4 \
    --lr 0.05 --batch 64
if [[ $status -eq 1 ]] && grep -q "rank 1 of 2 failed" "$d/out"; then
    ok "unreadable data"
else
    fail "unreadable data" "exit status $status"
    cat "$d/out"
fi

# --- a global batch the ranks cannot split -----------------------------------
run "uneven batch" "$work/uneven.out" "${MPIRUN[@]}" -np 2 "$bin" train "${MLP[@]}" --batch 63
if [[ $status -eq 2 ]] && grep -q "multiple of the 2 ranks" "$work/uneven.out"; then
    ok "uneven batch"
else
    fail "uneven batch" "exit status $status"
    cat "$work/uneven.out"
fi

# --- ranks started with other configurations ---------------------------------
run "other config" "$work/config.out" "${MPIRUN[@]}" \
    -np 1 "$bin" train --model plain-mlp:depth=3,width=32 --data digits:size=8 --seed 1 : \
    -np 1 "$bin" train --model plain-mlp:depth=3,width=32 --data digits:size=8 --seed 2
if [[ $status -eq 2 ]] && grep -q "another configuration than rank 0" "$work/config.out"; then
    ok "other config"
else
    fail "other config" "exit status $status"
    cat "$work/config.out"
fi

# --- bench on 2 MPI ranks -----------------------------------------------------
run "bench" "$work/bench.out" "${MPIRUN[@]}" -np 2 "$bin" bench \
    --model plain-mlp:depth=3,width=32 --input 1x8x8 --batch 64 --steps 3 --warmup 1
if [[ $status -eq 0 ]] && grep -q "ranks 2, per-rank batch 32" "$work/bench.out" &&
    grep -q "images/s" "$work/bench.out"; then
    ok "bench"
else
    fail "bench" "exit status $status"
    cat "$work/bench.out"
fi

echo "mpi-train: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
