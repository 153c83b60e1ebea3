//! [`ThreadComm`]: ranks as threads of one process, and [`run_ranks`].
//!
//! The ranks of a group share one [`Group`]: a mutex-protected round of
//! contributions and a condition variable. In each collective every rank
//! puts its contribution (header and data) into its slot; the last one to
//! arrive moves all slots into the round's result, advances the round
//! counter and wakes the others. Each rank then reads the result outside the
//! lock and does the same checks and the same rank-order sum as every other
//! rank. A round's result stays readable until the next round completes,
//! which needs every rank to have taken part in it, that is to have read the
//! previous result.
//!
//! A waiting rank wakes up when its round completes or when the group is
//! stopped: a rank called [`Communicator::abort`], or dropped its
//! communicator (returned, or unwound from a panic) — after which no round
//! can complete, so waiting would be forever.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::protocol::{check_headers, sum_in_rank_order, Header, Op, Scalar};
use crate::{Communicator, DistError};

/// One rank's data for a round.
struct Contribution {
    header: Header,
    data: Payload,
}

enum Payload {
    None,
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<u8>),
}

/// How the numeric element types travel in a [`Payload`].
trait ThreadScalar: Scalar {
    fn wrap(data: Vec<Self>) -> Payload;
    fn unwrap(payload: &Payload) -> &[Self];
}

impl ThreadScalar for f32 {
    fn wrap(data: Vec<f32>) -> Payload {
        Payload::F32(data)
    }
    fn unwrap(payload: &Payload) -> &[f32] {
        match payload {
            Payload::F32(data) => data,
            _ => &[],
        }
    }
}

impl ThreadScalar for f64 {
    fn wrap(data: Vec<f64>) -> Payload {
        Payload::F64(data)
    }
    fn unwrap(payload: &Payload) -> &[f64] {
        match payload {
            Payload::F64(data) => data,
            _ => &[],
        }
    }
}

/// Why a group can no longer complete a collective.
#[derive(Clone)]
enum Stop {
    Aborted {
        rank: usize,
        code: i32,
        message: String,
    },
    Left {
        rank: usize,
        panicking: bool,
    },
}

impl Stop {
    fn to_error(&self) -> DistError {
        match self.clone() {
            Stop::Aborted {
                rank,
                code,
                message,
            } => DistError::Aborted {
                rank,
                code,
                message,
            },
            Stop::Left { rank, panicking } => DistError::RankLeft { rank, panicking },
        }
    }

    fn rank(&self) -> usize {
        match self {
            Stop::Aborted { rank, .. } | Stop::Left { rank, .. } => *rank,
        }
    }
}

struct State {
    /// Rounds completed so far.
    round: u64,
    /// Ranks whose contribution to the current round is in `slots`.
    arrived: usize,
    slots: Vec<Option<Contribution>>,
    /// The contributions of the last completed round, in rank order.
    result: Arc<Vec<Contribution>>,
    /// The first reason the group stopped, if it did.
    stop: Option<Stop>,
}

struct Group {
    size: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl Group {
    /// The state. No code panics while holding the lock, and every update
    /// leaves the state consistent, so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the first reason the group stopped and wakes every waiter.
    fn stop(&self, stop: Stop) {
        let mut state = self.lock();
        if state.stop.is_none() {
            state.stop = Some(stop);
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// What [`ThreadComm::abort`] unwinds with, for [`run_ranks`] to recognise.
struct AbortPayload(DistError);

/// One rank of a group of threads in one process (see
/// [`ThreadComm::group`] and [`run_ranks`]).
///
/// It is `Send` (hand each rank to its thread) but not `Sync`: one rank's
/// collectives are called by one thread at a time.
///
/// Dropping a rank's communicator stops the group: collectives that other
/// ranks are waiting in, or call later, return [`DistError::RankLeft`]
/// instead of waiting for a rank that will never come. Collectives that
/// already completed on every rank are not affected.
pub struct ThreadComm {
    rank: usize,
    group: Arc<Group>,
    not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for ThreadComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadComm")
            .field("rank", &self.rank)
            .field("size", &self.group.size)
            .finish()
    }
}

impl ThreadComm {
    /// Creates a group of `n` ranks; element `r` is rank `r`. Move each to
    /// its own thread ([`run_ranks`] does it for you).
    pub fn group(n: usize) -> Vec<ThreadComm> {
        let group = Arc::new(Group {
            size: n,
            state: Mutex::new(State {
                round: 0,
                arrived: 0,
                slots: (0..n).map(|_| None).collect(),
                result: Arc::new(Vec::new()),
                stop: None,
            }),
            changed: Condvar::new(),
        });
        (0..n)
            .map(|rank| ThreadComm {
                rank,
                group: Arc::clone(&group),
                not_sync: PhantomData,
            })
            .collect()
    }

    /// Takes part in one round: gives this rank's contribution and returns
    /// everyone's, in rank order.
    fn exchange(&self, contribution: Contribution) -> Result<Arc<Vec<Contribution>>, DistError> {
        let group = &*self.group;
        let mut state = group.lock();
        if let Some(stop) = &state.stop {
            return Err(stop.to_error());
        }
        let round = state.round;
        state.slots[self.rank] = Some(contribution);
        state.arrived += 1;
        if state.arrived == group.size {
            let all: Vec<Contribution> = state.slots.iter_mut().filter_map(Option::take).collect();
            state.result = Arc::new(all);
            state.arrived = 0;
            state.round += 1;
            let result = Arc::clone(&state.result);
            drop(state);
            group.changed.notify_all();
            return Ok(result);
        }
        loop {
            state = group
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            // A completed round wins over a stop recorded after it: the
            // rank that left had taken part in it.
            if state.round != round {
                return Ok(Arc::clone(&state.result));
            }
            if let Some(stop) = &state.stop {
                return Err(stop.to_error());
            }
        }
    }

    /// Exchanges headers (and data), and checks the headers.
    fn round(&self, header: Header, data: Payload) -> Result<Arc<Vec<Contribution>>, DistError> {
        let all = self.exchange(Contribution { header, data })?;
        let headers: Vec<Header> = all.iter().map(|c| c.header).collect();
        check_headers(&headers)?;
        Ok(all)
    }

    fn all_reduce<T: ThreadScalar>(&self, data: &mut [T]) -> Result<(), DistError> {
        let header = Header::new(T::ALL_REDUCE, 0, data.len());
        let all = self.round(header, T::wrap(data.to_vec()))?;
        sum_in_rank_order(data, all.iter().map(|c| T::unwrap(&c.data)));
        Ok(())
    }

    fn broadcast<T: ThreadScalar>(&self, data: &mut [T], root: usize) -> Result<(), DistError> {
        let header = Header::new(T::BROADCAST, root, data.len());
        let payload = if self.rank == root {
            T::wrap(data.to_vec())
        } else {
            Payload::None
        };
        let all = self.round(header, payload)?;
        if self.rank != root {
            data.copy_from_slice(T::unwrap(&all[root].data));
        }
        Ok(())
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.group.size
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
        let header = Header::new(Op::BroadcastBytes, root, data.len());
        let payload = if self.rank == root {
            Payload::Bytes(data.clone())
        } else {
            Payload::None
        };
        let all = self.round(header, payload)?;
        if self.rank != root {
            if let Payload::Bytes(bytes) = &all[root].data {
                data.clear();
                data.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    fn barrier(&self) -> Result<(), DistError> {
        self.round(Header::new(Op::Barrier, 0, 0), Payload::None)
            .map(drop)
    }

    /// Marks the group aborted, so that every other rank's pending and
    /// future collectives return [`DistError::Aborted`], then unwinds this
    /// thread (without running the panic hook). [`run_ranks`] returns the
    /// abort as `Err(DistError::Aborted { .. })`; a thread of your own can
    /// catch it with [`std::panic::catch_unwind`] or see it in
    /// [`std::thread::JoinHandle::join`]'s error.
    fn abort(&self, code: i32, message: &str) -> ! {
        let stop = Stop::Aborted {
            rank: self.rank,
            code,
            message: message.to_string(),
        };
        let error = stop.to_error();
        self.group.stop(stop);
        panic::resume_unwind(Box::new(AbortPayload(error)))
    }
}

impl Drop for ThreadComm {
    fn drop(&mut self) {
        self.group.stop(Stop::Left {
            rank: self.rank,
            panicking: thread::panicking(),
        });
    }
}

/// Runs `f` on `n` ranks, each on its own scoped thread with its own
/// [`ThreadComm`], and returns the values of all ranks in rank order.
///
/// When a rank panics or aborts, its communicator stops the group, so ranks
/// waiting in a collective get an error rather than hang, and this function
/// returns.
///
/// # Errors
///
/// If any rank's thread panicked: the rank whose failure stopped the group
/// first, as [`DistError::Aborted`] if it called
/// [`abort`](Communicator::abort), else [`DistError::RankPanicked`] with
/// the panic message. Errors that collectives returned to `f` are `f`'s to
/// return inside `T`.
///
/// # Examples
///
/// ```
/// use gradlab_dist::{run_ranks, Communicator};
/// let sums = run_ranks(4, |comm| {
///     let mut x = [comm.rank() as f32, 1.0];
///     comm.all_reduce_sum_f32(&mut x).map(|()| x)
/// })?;
/// for sum in sums {
///     assert_eq!(sum?, [6.0, 4.0]);
/// }
/// # Ok::<(), gradlab_dist::DistError>(())
/// ```
pub fn run_ranks<T, F>(n: usize, f: F) -> Result<Vec<T>, DistError>
where
    T: Send,
    F: Fn(ThreadComm) -> T + Sync,
{
    let comms = ThreadComm::group(n);
    let group = comms.first().map(|comm| Arc::clone(&comm.group));
    let f = &f;
    let outcomes: Vec<thread::Result<T>> = thread::scope(|scope| {
        let handles: Vec<_> = comms
            .into_iter()
            .map(|comm| scope.spawn(move || f(comm)))
            .collect();
        handles.into_iter().map(|handle| handle.join()).collect()
    });
    if outcomes.iter().all(Result::is_ok) {
        return Ok(outcomes.into_iter().flatten().collect());
    }
    // The rank that stopped the group first, if it failed; else the first
    // rank that failed.
    let stopper = group
        .and_then(|group| group.lock().stop.as_ref().map(Stop::rank))
        .filter(|rank| outcomes[*rank].is_err());
    let (rank, payload) = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(rank, outcome)| outcome.err().map(|payload| (rank, payload)))
        .find(|(rank, _)| stopper.is_none_or(|stopper| stopper == *rank))
        .expect("a rank failed");
    Err(failure(rank, payload))
}

/// The error for a rank whose thread unwound with `payload`.
fn failure(rank: usize, payload: Box<dyn std::any::Any + Send>) -> DistError {
    let payload = match payload.downcast::<AbortPayload>() {
        Ok(abort) => return abort.0,
        Err(payload) => payload,
    };
    let message = if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    };
    DistError::RankPanicked { rank, message }
}
