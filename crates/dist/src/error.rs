//! The crate's error type.

use std::fmt::Write as _;

/// Everything that can go wrong in a collective, on every rank alike.
///
/// Errors found by comparing what the ranks passed in (lengths, roots, which
/// collective they called, configurations) are computed from the same
/// exchanged data on every rank, so every rank returns the same error and no
/// rank is left waiting for the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A rank called [`Communicator::abort`](crate::Communicator::abort).
    #[error("rank {rank} aborted the group with code {code}: {message}")]
    Aborted {
        /// The rank that aborted.
        rank: usize,
        /// The exit code it gave.
        code: i32,
        /// Its message.
        message: String,
    },
    /// A rank of a thread group dropped its communicator (returned, or
    /// unwound from a panic) while others still needed it for a collective.
    #[error("rank {rank} {} before this collective completed", if *.panicking { "panicked" } else { "dropped its communicator" })]
    RankLeft {
        /// The rank that left.
        rank: usize,
        /// Whether it left because its thread was panicking.
        panicking: bool,
    },
    /// A rank's thread panicked (reported by [`run_ranks`](crate::run_ranks)).
    #[error("rank {rank} panicked: {message}")]
    RankPanicked {
        /// The rank whose thread panicked.
        rank: usize,
        /// The panic message, when it was a string.
        message: String,
    },
    /// The ranks did not all call the same collective (with the same root).
    #[error("ranks called different collectives: {}", list_ranks(.calls))]
    CollectiveMismatch {
        /// What each rank called, in rank order.
        calls: Vec<String>,
    },
    /// The ranks passed buffers of different lengths to a collective that
    /// needs them equal.
    #[error("{op}: buffer lengths differ between ranks: {}", list_ranks(.lengths))]
    LengthMismatch {
        /// The collective.
        op: &'static str,
        /// Each rank's buffer length, in rank order.
        lengths: Vec<usize>,
    },
    /// A broadcast named a root rank that is not in the group.
    #[error("{op}: root rank {root} is out of range for a group of {size} ranks")]
    RootOutOfRange {
        /// The collective.
        op: &'static str,
        /// The root that was given.
        root: usize,
        /// The number of ranks.
        size: usize,
    },
    /// A buffer is larger than the transport can move in one call (MPI counts
    /// elements in a C `int`).
    #[error("{op}: {len} elements on each of {size} ranks exceed the limit of {limit} elements per call")]
    TooLarge {
        /// The collective.
        op: &'static str,
        /// The buffer length on each rank.
        len: usize,
        /// The number of ranks.
        size: usize,
        /// The largest total number of elements one call can move.
        limit: usize,
    },
    /// [`check_same_config`](crate::check_same_config) found ranks whose
    /// configuration differs from rank 0's.
    #[error("configuration differs from rank 0's on ranks {ranks:?} (of {size} ranks)")]
    ConfigMismatch {
        /// The ranks whose bytes differ from rank 0's, in increasing order.
        ranks: Vec<usize>,
        /// The number of ranks.
        size: usize,
    },
    /// The MPI library could not be set up as needed.
    #[error("MPI: {message}")]
    Mpi {
        /// What went wrong.
        message: String,
    },
}

/// `rank 0: a, rank 1: b, ...`
fn list_ranks<T: std::fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (rank, item) in items.iter().enumerate() {
        if rank > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "rank {rank}: {item}");
    }
    out
}
