//! [`LocalComm`]: a group of one.

use crate::protocol::{check_headers, Header, Op};
use crate::{Communicator, DistError};

/// The communicator of a run without data parallelism: rank 0 of a group of
/// one. Every collective leaves its data as it is (the sum over one rank is
/// its value, a broadcast from itself copies nothing); the only errors are a
/// broadcast root other than 0.
///
/// ```
/// use gradlab_dist::{Communicator, LocalComm};
/// let comm = LocalComm;
/// let mut grads = [1.5f32, -2.0];
/// comm.all_reduce_sum_f32(&mut grads)?;
/// assert_eq!(grads, [1.5, -2.0]);
/// assert_eq!((comm.rank(), comm.size()), (0, 1));
/// # Ok::<(), gradlab_dist::DistError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalComm;

impl LocalComm {
    /// The same checks as a larger group, on one header.
    fn check(op: Op, root: usize, len: usize) -> Result<(), DistError> {
        check_headers(&[Header::new(op, root, len)])
    }
}

impl Communicator for LocalComm {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<(), DistError> {
        Self::check(Op::AllReduceF32, 0, data.len())
    }

    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<(), DistError> {
        Self::check(Op::AllReduceF64, 0, data.len())
    }

    fn broadcast_f32(&self, data: &mut [f32], root: usize) -> Result<(), DistError> {
        Self::check(Op::BroadcastF32, root, data.len())
    }

    fn broadcast_f64(&self, data: &mut [f64], root: usize) -> Result<(), DistError> {
        Self::check(Op::BroadcastF64, root, data.len())
    }

    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), DistError> {
        Self::check(Op::BroadcastBytes, root, data.len())
    }

    fn barrier(&self) -> Result<(), DistError> {
        Ok(())
    }

    /// Prints `message` to standard error and ends the process with exit
    /// status `code`, as `MPI_Abort` would for a job of one process.
    fn abort(&self, code: i32, message: &str) -> ! {
        eprintln!("rank 0 aborted with code {code}: {message}");
        std::process::exit(code)
    }
}
