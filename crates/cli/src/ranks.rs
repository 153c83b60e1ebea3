//! The ranks a command runs on: the MPI world when the binary was built
//! with the `mpi` feature and launched by `mpirun`, one process otherwise;
//! the threads each rank computes with; and the agreement of all ranks on
//! the outcome of a command's setup.

use gradlab_dist::{Communicator, LocalComm};

use crate::error::{CliError, Result};

/// The number of processes of the job when launched by `mpirun` (Open
/// MPI's `OMPI_COMM_WORLD_SIZE`, or the `PMI_SIZE` / `PMIX_SIZE` of MPICH
/// and other PMI launchers); `None` otherwise.
pub fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

/// Processes of the job on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`,
/// `MPI_LOCALNRANKS`), 1 when unknown.
fn local_ranks() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// The threads each of `ranks_here` ranks on this machine computes with:
/// the machine's cores shared evenly, at least one.
pub fn threads_per_rank(ranks_here: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / ranks_here.max(1)).max(1)
}

/// The communicator of this process: `MpiComm` on the MPI world when built
/// with the `mpi` feature and launched by `mpirun`, [`LocalComm`]
/// otherwise. Under MPI the global thread pool is sized to this rank's
/// share of the machine's cores (unless `RAYON_NUM_THREADS` says
/// otherwise), so that the ranks of one machine do not oversubscribe it.
/// MPI is finalised when the communicator is dropped.
///
/// # Errors
/// A usage error when launched by `mpirun` on several processes by a
/// binary built without MPI (each would train alone and write the same
/// files); a run error when MPI cannot be initialised.
pub fn world() -> Result<Box<dyn Communicator>> {
    let Some(size) = launched_ranks() else {
        return Ok(Box::new(LocalComm));
    };
    #[cfg(feature = "mpi")]
    {
        let _ = size;
        let comm = gradlab_dist::MpiComm::init().map_err(|e| CliError::Run(e.to_string()))?;
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            // Fails only when the pool already exists; it then keeps its size.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(threads_per_rank(local_ranks()))
                .build_global();
        }
        Ok(Box::new(comm))
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = local_ranks;
        if size > 1 {
            return Err(CliError::Usage(format!(
                "launched by mpirun on {size} processes, but this gradlab was built without MPI; build it with `cargo build --release --features mpi`"
            )));
        }
        Ok(Box::new(LocalComm))
    }
}

/// Every rank learns whether any rank's `local` result (its setup: reading
/// the data, building the model) failed, so that none goes on into a
/// collective the others never join. The failing rank keeps its error;
/// the others get a run error naming it. With one rank, `local` as it is.
///
/// # Errors
/// As said, and run errors of the collectives.
pub fn agree<T>(comm: &dyn Communicator, local: Result<T>) -> Result<T> {
    let flag = local
        .as_ref()
        .map(|_| ())
        .map_err(|e| gradlab_train::TrainError::Spec(e.to_string()));
    match (local, gradlab_train::agree(comm, None, flag)) {
        (Err(e), _) => Err(e),
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(CliError::Run(e.to_string())),
    }
}

/// Ends a command run on `comm`: rank 0 returns `result` (and prints it, as
/// every command does); another rank ends its process quietly with the
/// exit code of its error, after finalising MPI, since rank 0 reports the
/// error of the whole run.
///
/// mpirun ends the whole job as soon as one process exits non-zero, so no
/// rank leaves before rank 0 has printed: with several ranks, rank 0
/// prints a failure here, then every rank meets at a barrier, then the
/// processes end.
///
/// # Errors
/// `result`'s, on rank 0 of a single-rank run; with several ranks, rank 0
/// of a failed run prints its error and exits with its code.
pub fn finish(comm: Box<dyn Communicator>, result: Result<()>) -> Result<()> {
    if comm.size() == 1 {
        return result;
    }
    let rank = comm.rank();
    if let (0, Err(e)) = (rank, &result) {
        eprintln!("error: {e}");
    }
    // A rank that cannot reach the barrier (its peer is gone) has nothing
    // left to wait for.
    let _ = comm.barrier();
    let code = result.as_ref().err().map_or(0, |e| e.exit_code());
    drop(comm);
    if rank == 0 && code == 0 {
        return Ok(());
    }
    std::process::exit(code)
}
