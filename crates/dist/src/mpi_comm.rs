//! [`MpiComm`]: one rank per MPI process (feature `mpi`).

use std::cell::Cell;
use std::marker::PhantomData;

use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Equivalence, Root};
use mpi::Threading;

use crate::protocol::{check_headers, sum_in_rank_order, Header, Op, Scalar, HEADER_WORDS};
use crate::{Communicator, DistError};

/// MPI counts elements in a C `int`.
const COUNT_LIMIT: usize = i32::MAX as usize;

/// The world communicator of an MPI job: one rank per process, launched by
/// `mpirun -np N`.
///
/// Each collective first all-gathers a three-word header from every rank
/// (which collective, root, length), so mismatched calls and lengths are
/// found by every rank alike. An all-reduce is then an `MPI_Allgather` of
/// all ranks' buffers followed by a local sum in rank order, never
/// `MPI_Allreduce`, whose order of summation is up to the MPI library: every
/// rank adds the same numbers in the same order, so every rank gets the same
/// bits, and the same bits as [`ThreadComm`](crate::ThreadComm) on the same
/// inputs. This moves N times the data of a reduction, which is cheap next
/// to a training step for the model sizes gradlab trains.
///
/// Dropping it finalises MPI (`MPI_Finalize`), after which MPI cannot be
/// initialised again in the process.
pub struct MpiComm {
    universe: Universe,
    rank: usize,
    size: usize,
    /// Calls come from one thread at a time (MPI is initialised with
    /// `MPI_THREAD_SERIALIZED`, which allows any thread, one at a time).
    not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish()
    }
}

impl MpiComm {
    /// Initialises MPI (`MPI_Init_thread` asking for
    /// `MPI_THREAD_SERIALIZED`) and returns this process's rank of the
    /// world communicator. MPI stays initialised until the `MpiComm` is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`DistError::Mpi`] if MPI was already initialised in this process,
    /// or if the library cannot serve calls from whichever thread holds the
    /// communicator (thread level below `MPI_THREAD_SERIALIZED`).
    pub fn init() -> Result<MpiComm, DistError> {
        let (universe, provided) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| DistError::Mpi {
                message: "MPI is already initialised in this process".to_string(),
            })?;
        if provided < Threading::Serialized {
            return Err(DistError::Mpi {
                message: format!(
                    "the MPI library provides thread level {provided:?}, \
                     but MpiComm needs Serialized"
                ),
            });
        }
        let world = universe.world();
        let (rank, size) = (world.rank(), world.size());
        let convert = |value: i32| {
            usize::try_from(value).map_err(|_| DistError::Mpi {
                message: format!("the world communicator reports rank {rank} of size {size}"),
            })
        };
        Ok(MpiComm {
            rank: convert(rank)?,
            size: convert(size)?,
            universe,
            not_sync: PhantomData,
        })
    }

    fn world(&self) -> SimpleCommunicator {
        self.universe.world()
    }

    /// All-gathers every rank's header and checks them.
    fn headers(&self, header: Header) -> Result<Vec<Header>, DistError> {
        let mut words = vec![0u64; HEADER_WORDS * self.size];
        self.world()
            .all_gather_into(&header.encode()[..], &mut words[..]);
        let headers = Header::decode_all(&words)?;
        check_headers(&headers)?;
        Ok(headers)
    }

    /// Errs if `total` elements do not fit one MPI call (the same outcome
    /// on every rank: it depends only on the exchanged headers).
    fn check_count(&self, op: Op, len: usize, total: Option<usize>) -> Result<(), DistError> {
        match total {
            Some(total) if total <= COUNT_LIMIT => Ok(()),
            _ => Err(DistError::TooLarge {
                op: op.name(),
                len,
                size: self.size,
                limit: COUNT_LIMIT,
            }),
        }
    }

    fn all_reduce<T: Scalar + Equivalence>(&self, data: &mut [T]) -> Result<(), DistError> {
        let len = data.len();
        self.headers(Header::new(T::ALL_REDUCE, 0, len))?;
        self.check_count(T::ALL_REDUCE, len, len.checked_mul(self.size))?;
        if len == 0 {
            return Ok(());
        }
        let mut gathered = vec![T::default(); len * self.size];
        self.world().all_gather_into(&data[..], &mut gathered[..]);
        sum_in_rank_order(data, gathered.chunks_exact(len));
        Ok(())
    }

    fn broadcast<T: Scalar + Equivalence>(
        &self,
        data: &mut [T],
        root: usize,
    ) -> Result<(), DistError> {
        let len = data.len();
        self.headers(Header::new(T::BROADCAST, root, len))?;
        self.check_count(T::BROADCAST, len, Some(len))?;
        if len > 0 {
            self.broadcast_from(data, root);
        }
        Ok(())
    }

    /// Broadcasts `data` from rank `root` (checked by the headers to be
    /// below `size`, which came from an `i32`).
    fn broadcast_from<T: Equivalence>(&self, data: &mut [T], root: usize) {
        let world = self.world();
        let root = i32::try_from(root).unwrap_or(i32::MAX);
        world.process_at_rank(root).broadcast_into(data);
    }
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<(), DistError> {
        self.all_reduce(data)
    }

    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<(), DistError> {
        self.all_reduce(data)
    }

    fn broadcast_f32(&self, data: &mut [f32], root: usize) -> Result<(), DistError> {
        self.broadcast(data, root)
    }

    fn broadcast_f64(&self, data: &mut [f64], root: usize) -> Result<(), DistError> {
        self.broadcast(data, root)
    }

    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), DistError> {
        let headers = self.headers(Header::new(Op::BroadcastBytes, root, data.len()))?;
        // Every rank knows the root's length from its header.
        let len = headers[root].len;
        self.check_count(Op::BroadcastBytes, len, Some(len))?;
        if self.rank != root {
            data.clear();
            data.resize(len, 0);
        }
        if len > 0 {
            self.broadcast_from(&mut data[..], root);
        }
        Ok(())
    }

    fn barrier(&self) -> Result<(), DistError> {
        self.headers(Header::new(Op::Barrier, 0, 0))?;
        self.world().barrier();
        Ok(())
    }

    /// Prints `message` to standard error and calls `MPI_Abort` on the
    /// world communicator with `code`, which ends every process of the job.
    fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("rank {} aborted with code {code}: {message}", self.rank);
        self.world().abort(code)
    }
}
