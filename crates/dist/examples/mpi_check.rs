//! Checks `MpiComm` inside a real MPI job; `crates/dist/tests/mpi/run.sh`
//! builds it with `--features mpi` and runs it through mpirun.
//!
//! ```text
//! mpirun -np 2 mpi_check [check]   all checks below; exit status 1 on any failure
//! mpirun -np 2 mpi_check exit      rank 1 exits with status 3 in the middle of the run
//! mpirun -np 2 mpi_check abort     rank 1 calls abort(5, ..) in the middle of the run
//! ```
//!
//! `check` runs, on every rank: all-reduce (f32 and f64) of seeded random
//! vectors of lengths 0, 1 and more, compared bit for bit with the rank-order
//! sum of every rank's data regenerated locally, and with `ThreadComm` run on
//! the same data in this process; broadcasts from every root; a barrier that
//! must wait for the slowest rank; `check_same_config` with equal and with
//! differing configurations; and the errors of mismatched lengths, roots and
//! collectives, after which the group must still work. The failures of all
//! ranks are summed, so every rank exits with the same status.
//!
//! In `exit` and `abort` the other ranks wait in a collective that rank 1
//! never joins: mpirun has to end them; if the collective returns instead,
//! they exit with status 1.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use gradlab_dist::{check_same_config, run_ranks, Communicator, DistError, MpiComm};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

const SEED: u64 = 20_260_601;
const CASES: u64 = 40;

fn main() -> ExitCode {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "check".to_string());
    let comm = match MpiComm::init() {
        Ok(comm) => comm,
        Err(err) => {
            eprintln!("mpi_check: {err}");
            return ExitCode::from(2);
        }
    };
    match mode.as_str() {
        "check" => check(&comm),
        "exit" => leave_mid_run(&comm, Leave::Exit),
        "abort" => leave_mid_run(&comm, Leave::Abort),
        other => {
            eprintln!("mpi_check: unknown mode {other:?} (check, exit or abort)");
            ExitCode::from(2)
        }
    }
}

/// How rank 1 leaves the job.
enum Leave {
    /// `std::process::exit(3)`, without finalising MPI.
    Exit,
    /// `Communicator::abort(5, ..)`.
    Abort,
}

/// One round that completes, then rank 1 leaves while the others enter an
/// all-reduce it never joins.
fn leave_mid_run(comm: &MpiComm, leave: Leave) -> ExitCode {
    let mut x = [1.0f32; 4];
    if let Err(err) = comm.all_reduce_sum_f32(&mut x) {
        eprintln!("rank {}: first all-reduce failed: {err}", comm.rank());
        return ExitCode::FAILURE;
    }
    if comm.rank() == 1 {
        match leave {
            Leave::Exit => {
                eprintln!("rank 1: exiting with status 3 in the middle of the run");
                std::process::exit(3)
            }
            Leave::Abort => comm.abort(5, "stopping the job on purpose"),
        }
    }
    let result = comm.all_reduce_sum_f32(&mut x);
    eprintln!(
        "rank {}: the all-reduce returned {result:?} although rank 1 has left",
        comm.rank()
    );
    ExitCode::FAILURE
}

/// Collects failures of one rank.
struct Report {
    rank: usize,
    failures: usize,
}

impl Report {
    fn expect(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.failures += 1;
            eprintln!("rank {}: FAILED {what}: {}", self.rank, detail());
        }
    }
}

/// The generator of `rank`'s data in `case` (or of the case itself, with
/// `stream = u64::MAX`): the same on every process.
fn rng(case: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.set_stream(stream);
    rng
}

fn case_len(case: u64) -> usize {
    match case {
        0 => 0,
        1 => 1,
        _ => rng(case, u64::MAX).random_range(2..=300),
    }
}

/// Values over many binary orders of magnitude, so that the order of
/// addition shows in the rounded sums.
fn data_f64(case: u64, rank: usize, len: usize) -> Vec<f64> {
    let mut rng = rng(case, rank as u64);
    (0..len)
        .map(|_| (rng.random::<f64>() * 2.0 - 1.0) * 2f64.powi(rng.random_range(-40..40)))
        .collect()
}

fn data_f32(case: u64, rank: usize, len: usize) -> Vec<f32> {
    data_f64(case, rank, len)
        .iter()
        .map(|x| *x as f32)
        .collect()
}

/// The sum in rank order, written out independently of the crate.
fn rank_order_sum<T: Copy + std::ops::AddAssign>(per_rank: &[Vec<T>]) -> Vec<T> {
    let mut sum = per_rank[0].clone();
    for part in &per_rank[1..] {
        for (s, x) in sum.iter_mut().zip(part) {
            *s += *x;
        }
    }
    sum
}

fn bits32(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn bits64(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn check(comm: &MpiComm) -> ExitCode {
    let (rank, size) = (comm.rank(), comm.size());
    let mut report = Report { rank, failures: 0 };

    all_reduce_cases(comm, &mut report);
    broadcasts(comm, &mut report);
    barrier(comm, &mut report);
    configs(comm, &mut report);
    mismatches(comm, &mut report);

    // Every rank learns the total, so every rank exits alike.
    let mut failures = [report.failures as f64];
    if let Err(err) = comm.all_reduce_sum_f64(&mut failures) {
        eprintln!("rank {rank}: summing the failures failed: {err}");
        return ExitCode::FAILURE;
    }
    if rank == 0 {
        println!(
            "mpi_check on {size} ranks: {CASES} all-reduce cases (f32 and f64), broadcasts, \
             barrier, configs, mismatches: {} failures",
            failures[0]
        );
    }
    if failures[0] == 0.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn all_reduce_cases(comm: &MpiComm, report: &mut Report) {
    let (rank, size) = (comm.rank(), comm.size());
    for case in 0..CASES {
        let len = case_len(case);

        let all: Vec<Vec<f32>> = (0..size).map(|r| data_f32(case, r, len)).collect();
        let mut x = all[rank].clone();
        let result = comm.all_reduce_sum_f32(&mut x);
        report.expect("all_reduce_sum_f32", result.is_ok(), || {
            format!("case {case}: {result:?}")
        });
        let expected = bits32(&rank_order_sum(&all));
        report.expect(
            "all_reduce_sum_f32 = rank-order sum",
            bits32(&x) == expected,
            || format!("case {case} (len {len})"),
        );
        let threads = run_ranks(size, |c| {
            let mut y = all[c.rank()].clone();
            c.all_reduce_sum_f32(&mut y).map(|()| y)
        });
        let same = matches!(&threads, Ok(t) if t.iter().all(|y| matches!(y, Ok(y) if bits32(y) == bits32(&x))));
        report.expect("all_reduce_sum_f32 = ThreadComm's", same, || {
            format!("case {case} (len {len})")
        });

        let all: Vec<Vec<f64>> = (0..size).map(|r| data_f64(case, r, len)).collect();
        let mut x = all[rank].clone();
        let result = comm.all_reduce_sum_f64(&mut x);
        report.expect("all_reduce_sum_f64", result.is_ok(), || {
            format!("case {case}: {result:?}")
        });
        let expected = bits64(&rank_order_sum(&all));
        report.expect(
            "all_reduce_sum_f64 = rank-order sum",
            bits64(&x) == expected,
            || format!("case {case} (len {len})"),
        );
        let threads = run_ranks(size, |c| {
            let mut y = all[c.rank()].clone();
            c.all_reduce_sum_f64(&mut y).map(|()| y)
        });
        let same = matches!(&threads, Ok(t) if t.iter().all(|y| matches!(y, Ok(y) if bits64(y) == bits64(&x))));
        report.expect("all_reduce_sum_f64 = ThreadComm's", same, || {
            format!("case {case} (len {len})")
        });
    }
}

fn broadcasts(comm: &MpiComm, report: &mut Report) {
    let (rank, size) = (comm.rank(), comm.size());
    for root in 0..size {
        let case = 1000 + root as u64;
        let len = case_len(case);
        let mut x = data_f64(case, rank, len);
        let result = comm.broadcast_f64(&mut x, root);
        report.expect(
            "broadcast_f64",
            result.is_ok() && x == data_f64(case, root, len),
            || format!("root {root}: {result:?}"),
        );
        let mut y = data_f32(case, rank, len);
        let result = comm.broadcast_f32(&mut y, root);
        report.expect(
            "broadcast_f32",
            result.is_ok() && y == data_f32(case, root, len),
            || format!("root {root}: {result:?}"),
        );
        // The root's length, whatever the receivers held before.
        let root_bytes: Vec<u8> = (0..len * 3).map(|i| (i * 7 + root) as u8).collect();
        let mut bytes = if rank == root {
            root_bytes.clone()
        } else {
            vec![0xAA; rank]
        };
        let result = comm.broadcast_bytes(&mut bytes, root);
        report.expect(
            "broadcast_bytes",
            result.is_ok() && bytes == root_bytes,
            || format!("root {root}: {result:?}, {} bytes", bytes.len()),
        );
    }
}

fn barrier(comm: &MpiComm, report: &mut Report) {
    let (rank, size) = (comm.rank(), comm.size());
    let step = Duration::from_millis(150);
    let aligned = comm.barrier();
    let start = Instant::now();
    thread::sleep(step * rank as u32);
    let result = comm.barrier();
    let waited = start.elapsed();
    // Every rank waits for the last one, give or take how far apart the
    // ranks left the first barrier.
    let least = (step * (size as u32 - 1)).saturating_sub(Duration::from_millis(50));
    report.expect(
        "barrier waits for the slowest rank",
        aligned.is_ok() && result.is_ok() && waited >= least,
        || format!("{aligned:?} {result:?}, waited {waited:?}, expected at least {least:?}"),
    );
}

fn configs(comm: &MpiComm, report: &mut Report) {
    let (rank, size) = (comm.rank(), comm.size());
    let result = check_same_config(comm, b"{\"model\":\"resnet20\",\"lr\":0.1}");
    report.expect(
        "check_same_config with equal configs",
        result.is_ok(),
        || format!("{result:?}"),
    );
    let last = size - 1;
    let config: &[u8] = if rank == last && size > 1 {
        b"{\"model\":\"resnet20\",\"lr\":0.2}"
    } else {
        b"{\"model\":\"resnet20\",\"lr\":0.1}"
    };
    let result = check_same_config(comm, config);
    let expected = if size > 1 {
        Err(DistError::ConfigMismatch {
            ranks: vec![last],
            size,
        })
    } else {
        Ok(())
    };
    report.expect(
        "check_same_config names the differing rank on every rank",
        result == expected,
        || format!("{result:?}"),
    );
}

fn mismatches(comm: &MpiComm, report: &mut Report) {
    let (rank, size) = (comm.rank(), comm.size());

    let mut x = vec![1.0f32; 2 + rank];
    let result = comm.all_reduce_sum_f32(&mut x);
    let lengths: Vec<usize> = (0..size).map(|r| 2 + r).collect();
    let expected = if size > 1 {
        Err(DistError::LengthMismatch {
            op: "all_reduce_sum_f32",
            lengths,
        })
    } else {
        Ok(())
    };
    report.expect("length mismatch", result == expected, || {
        format!("{result:?}")
    });

    let result = comm.broadcast_f64(&mut [0.0], size);
    report.expect(
        "root out of range",
        matches!(result, Err(DistError::RootOutOfRange { .. })),
        || format!("{result:?}"),
    );

    if size > 1 {
        let result = if rank == 0 {
            comm.barrier()
        } else {
            comm.broadcast_bytes(&mut Vec::new(), 0)
        };
        report.expect(
            "different collectives",
            matches!(result, Err(DistError::CollectiveMismatch { .. })),
            || format!("{result:?}"),
        );
    }

    // After errors found in the headers, the group still works.
    let mut y = [1.0f64];
    let result = comm.all_reduce_sum_f64(&mut y);
    report.expect(
        "all-reduce after the errors",
        result.is_ok() && y[0] == size as f64,
        || format!("{result:?} {y:?}"),
    );
}
