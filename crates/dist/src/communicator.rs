//! The [`Communicator`] trait and [`check_same_config`].

use crate::DistError;

/// One rank's handle on a group of ranks that train together.
///
/// The collectives must be called by every rank of the group, in the same
/// order; each one returns when its data has been exchanged. Before moving
/// any data, every implementation exchanges a small header (which collective,
/// root, length) among all ranks, so a rank that calls a different
/// collective, names another root or passes a buffer of another length makes
/// *every* rank return the same [`DistError`] rather than wait forever.
///
/// # Reduction order
///
/// The sums are computed in a fixed order: element by element, rank 0's
/// value first, then rank 1's added to it, then rank 2's, up to rank N-1.
/// Floating-point addition is not associative, so this is what makes a run
/// reproducible: the same inputs give the same bits on every rank, from run
/// to run, and from every implementation of this crate.
///
/// The trait is object-safe: training code can hold a
/// `Box<dyn Communicator>` and run unchanged on one process, on threads or
/// over MPI.
pub trait Communicator: Send {
    /// This rank's index, in `0..size()`.
    fn rank(&self) -> usize;

    /// The number of ranks in the group.
    fn size(&self) -> usize;

    /// Replaces `data` on every rank by the element-wise sum over all ranks,
    /// added in rank order (see the trait's documentation).
    ///
    /// # Errors
    ///
    /// [`DistError::LengthMismatch`] if the ranks' buffers differ in length
    /// (naming each rank's length), [`DistError::CollectiveMismatch`] if the
    /// ranks did not all call this collective, and the errors of a group
    /// that has been aborted or left.
    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<(), DistError>;

    /// [`all_reduce_sum_f32`](Communicator::all_reduce_sum_f32) for `f64`.
    ///
    /// # Errors
    ///
    /// As for [`all_reduce_sum_f32`](Communicator::all_reduce_sum_f32).
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<(), DistError>;

    /// Copies rank `root`'s `data` into `data` on every other rank.
    ///
    /// # Errors
    ///
    /// [`DistError::RootOutOfRange`] if `root >= size()`,
    /// [`DistError::LengthMismatch`] if the ranks' buffers differ in length,
    /// [`DistError::CollectiveMismatch`] if the ranks did not all call this
    /// collective with the same root, and the errors of a group that has
    /// been aborted or left.
    fn broadcast_f32(&self, data: &mut [f32], root: usize) -> Result<(), DistError>;

    /// [`broadcast_f32`](Communicator::broadcast_f32) for `f64`.
    ///
    /// # Errors
    ///
    /// As for [`broadcast_f32`](Communicator::broadcast_f32).
    fn broadcast_f64(&self, data: &mut [f64], root: usize) -> Result<(), DistError>;

    /// Replaces `data` on every other rank by rank `root`'s bytes, whatever
    /// their length: the receivers' vectors are resized. Meant for a
    /// configuration (or its hash) sent from rank 0; see
    /// [`check_same_config`].
    ///
    /// # Errors
    ///
    /// As for [`broadcast_f32`](Communicator::broadcast_f32), except that
    /// the lengths may differ.
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), DistError>;

    /// Returns once every rank has called it.
    ///
    /// # Errors
    ///
    /// [`DistError::CollectiveMismatch`] if the ranks did not all call it,
    /// and the errors of a group that has been aborted or left.
    fn barrier(&self) -> Result<(), DistError>;

    /// Ends the whole group, with `MPI_Abort` semantics: for a rank that
    /// cannot go on (bad data, a failed check) and must not leave the others
    /// waiting.
    ///
    /// `MpiComm` (feature `mpi`) calls `MPI_Abort` on the world, which ends every
    /// process of the job; [`LocalComm`](crate::LocalComm) ends the
    /// process with exit status `code`. [`ThreadComm`](crate::ThreadComm)
    /// marks the group aborted, so that every other rank's pending and
    /// future collectives return [`DistError::Aborted`], and unwinds the
    /// calling thread; [`run_ranks`](crate::run_ranks) turns that into
    /// `Err(DistError::Aborted { .. })`.
    fn abort(&self, code: i32, message: &str) -> !;
}

/// Checks that every rank runs with the same configuration as rank 0.
///
/// Rank 0's `bytes` (a configuration file, its JSON or a hash of it) are
/// broadcast, each rank compares them with its own, and the result is
/// all-reduced, so that every rank learns which ranks differ and all of them
/// return the same result: nobody goes on alone or waits for the others.
///
/// # Errors
///
/// [`DistError::ConfigMismatch`] naming the ranks whose bytes differ from
/// rank 0's, on every rank; and the errors of the collectives.
///
/// # Examples
///
/// ```
/// use gradlab_dist::{check_same_config, run_ranks, Communicator, DistError};
///
/// let results = run_ranks(3, |comm| {
///     let config = if comm.rank() == 2 { "lr=0.2" } else { "lr=0.1" };
///     check_same_config(&comm, config.as_bytes())
/// })?;
/// for result in results {
///     assert_eq!(result, Err(DistError::ConfigMismatch { ranks: vec![2], size: 3 }));
/// }
/// # Ok::<(), DistError>(())
/// ```
pub fn check_same_config<C: Communicator + ?Sized>(
    comm: &C,
    bytes: &[u8],
) -> Result<(), DistError> {
    let mut reference = if comm.rank() == 0 {
        bytes.to_vec()
    } else {
        Vec::new()
    };
    comm.broadcast_bytes(&mut reference, 0)?;
    // One flag per rank, summed: exact in f64 for any number of ranks.
    let mut differs = vec![0.0f64; comm.size()];
    if reference != bytes {
        differs[comm.rank()] = 1.0;
    }
    comm.all_reduce_sum_f64(&mut differs)?;
    let ranks: Vec<usize> = differs
        .iter()
        .enumerate()
        .filter(|(_, flag)| **flag != 0.0)
        .map(|(rank, _)| rank)
        .collect();
    if ranks.is_empty() {
        Ok(())
    } else {
        Err(DistError::ConfigMismatch {
            ranks,
            size: comm.size(),
        })
    }
}
