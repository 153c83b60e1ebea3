//! What every implementation shares: the header each rank sends before a
//! collective, the checks on the headers of all ranks, and the sum in rank
//! order.
//!
//! Every collective starts with an exchange of one [`Header`] per rank
//! (what is being called, the root, the buffer length). All ranks then run
//! [`check_headers`] on the same list, so they all find the same mismatch and
//! return the same error instead of some of them waiting for data that never
//! comes.

use std::ops::AddAssign;

use crate::DistError;

/// The collectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    AllReduceF32,
    AllReduceF64,
    BroadcastF32,
    BroadcastF64,
    BroadcastBytes,
    Barrier,
}

impl Op {
    /// The wire code of an operation is its index here.
    #[cfg(feature = "mpi")]
    const ALL: [Op; 6] = [
        Op::AllReduceF32,
        Op::AllReduceF64,
        Op::BroadcastF32,
        Op::BroadcastF64,
        Op::BroadcastBytes,
        Op::Barrier,
    ];

    /// The name of the [`Communicator`](crate::Communicator) method.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::AllReduceF32 => "all_reduce_sum_f32",
            Op::AllReduceF64 => "all_reduce_sum_f64",
            Op::BroadcastF32 => "broadcast_f32",
            Op::BroadcastF64 => "broadcast_f64",
            Op::BroadcastBytes => "broadcast_bytes",
            Op::Barrier => "barrier",
        }
    }

    fn has_root(self) -> bool {
        matches!(
            self,
            Op::BroadcastF32 | Op::BroadcastF64 | Op::BroadcastBytes
        )
    }

    /// Whether every rank's buffer must have the same length (a
    /// `broadcast_bytes` receiver's buffer takes the root's length).
    fn needs_equal_lengths(self) -> bool {
        !matches!(self, Op::BroadcastBytes | Op::Barrier)
    }
}

/// What one rank is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) op: Op,
    /// The root of a broadcast, 0 otherwise.
    pub(crate) root: usize,
    /// The length of this rank's buffer.
    pub(crate) len: usize,
}

/// Words per header on the wire.
#[cfg(feature = "mpi")]
pub(crate) const HEADER_WORDS: usize = 3;

impl Header {
    pub(crate) fn new(op: Op, root: usize, len: usize) -> Header {
        Header { op, root, len }
    }

    fn describe(&self) -> String {
        if self.op.has_root() {
            format!("{}(root {})", self.op.name(), self.root)
        } else {
            self.op.name().to_string()
        }
    }

    /// The header as machine-independent words.
    #[cfg(feature = "mpi")]
    pub(crate) fn encode(&self) -> [u64; HEADER_WORDS] {
        let code = Op::ALL.iter().position(|op| *op == self.op).unwrap_or(0);
        [code as u64, self.root as u64, self.len as u64]
    }

    /// Decodes the headers of all ranks. Unknown operation codes (a rank
    /// running another build) are reported as a collective mismatch, the same
    /// way on every rank.
    #[cfg(feature = "mpi")]
    pub(crate) fn decode_all(words: &[u64]) -> Result<Vec<Header>, DistError> {
        let decoded: Vec<Option<Header>> = words
            .chunks_exact(HEADER_WORDS)
            .map(|w| {
                let op = usize::try_from(w[0]).ok().and_then(|i| Op::ALL.get(i))?;
                Some(Header {
                    op: *op,
                    root: usize::try_from(w[1]).ok()?,
                    len: usize::try_from(w[2]).ok()?,
                })
            })
            .collect();
        if decoded.iter().all(Option::is_some) {
            return Ok(decoded.into_iter().flatten().collect());
        }
        let calls = decoded
            .iter()
            .zip(words.chunks_exact(HEADER_WORDS))
            .map(|(h, w)| match h {
                Some(h) => h.describe(),
                None => format!("unknown collective (header {w:?})"),
            })
            .collect();
        Err(DistError::CollectiveMismatch { calls })
    }
}

/// Checks that all ranks called the same collective with the same root, that
/// the root exists, and that the lengths agree where they must. `headers` is
/// in rank order and the same on every rank, so the outcome is too.
pub(crate) fn check_headers(headers: &[Header]) -> Result<(), DistError> {
    let Some(first) = headers.first() else {
        return Ok(());
    };
    if headers
        .iter()
        .any(|h| h.op != first.op || (first.op.has_root() && h.root != first.root))
    {
        return Err(DistError::CollectiveMismatch {
            calls: headers.iter().map(Header::describe).collect(),
        });
    }
    if first.op.has_root() && first.root >= headers.len() {
        return Err(DistError::RootOutOfRange {
            op: first.op.name(),
            root: first.root,
            size: headers.len(),
        });
    }
    if first.op.needs_equal_lengths() && headers.iter().any(|h| h.len != first.len) {
        return Err(DistError::LengthMismatch {
            op: first.op.name(),
            lengths: headers.iter().map(|h| h.len).collect(),
        });
    }
    Ok(())
}

/// The element types of the numeric collectives.
pub(crate) trait Scalar: Copy + AddAssign + Default + Send + 'static {
    const ALL_REDUCE: Op;
    const BROADCAST: Op;
}

impl Scalar for f32 {
    const ALL_REDUCE: Op = Op::AllReduceF32;
    const BROADCAST: Op = Op::BroadcastF32;
}

impl Scalar for f64 {
    const ALL_REDUCE: Op = Op::AllReduceF64;
    const BROADCAST: Op = Op::BroadcastF64;
}

/// `out[i] = parts[0][i] + parts[1][i] + ... + parts[n-1][i]`, added left to
/// right: rank 0's value first, then each following rank's in turn. Every
/// implementation reduces through this function, so they all round the same
/// way and agree bit for bit. Every part has `out.len()` elements (checked by
/// the headers beforehand).
pub(crate) fn sum_in_rank_order<'a, T: Scalar>(
    out: &mut [T],
    mut parts: impl Iterator<Item = &'a [T]>,
) {
    let Some(first) = parts.next() else {
        return;
    };
    out.copy_from_slice(first);
    for part in parts {
        for (o, x) in out.iter_mut().zip(part) {
            *o += *x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_calls_are_named_per_rank() {
        let headers = [
            Header::new(Op::AllReduceF32, 0, 3),
            Header::new(Op::BroadcastF32, 1, 3),
        ];
        let err = check_headers(&headers).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ranks called different collectives: rank 0: all_reduce_sum_f32, \
             rank 1: broadcast_f32(root 1)"
        );
    }

    #[test]
    fn broadcast_bytes_lengths_may_differ_but_roots_may_not() {
        let same_root = [
            Header::new(Op::BroadcastBytes, 0, 3),
            Header::new(Op::BroadcastBytes, 0, 0),
        ];
        assert_eq!(check_headers(&same_root), Ok(()));
        let other_root = [
            Header::new(Op::BroadcastBytes, 0, 3),
            Header::new(Op::BroadcastBytes, 1, 3),
        ];
        assert!(matches!(
            check_headers(&other_root),
            Err(DistError::CollectiveMismatch { .. })
        ));
    }

    #[test]
    fn root_out_of_range() {
        let headers = [Header::new(Op::BroadcastF64, 2, 1); 2];
        assert_eq!(
            check_headers(&headers),
            Err(DistError::RootOutOfRange {
                op: "broadcast_f64",
                root: 2,
                size: 2
            })
        );
    }

    #[test]
    fn sum_starts_from_rank_zero() {
        // -0.0 + nothing stays -0.0; 0.0 + -0.0 would give 0.0.
        let mut out = [1.0f32];
        sum_in_rank_order(&mut out, [&[-0.0f32][..]].into_iter());
        assert_eq!(out[0].to_bits(), (-0.0f32).to_bits());
        // (1e8 + 1) - 1e8 == 0 in f32 but 1e8 - 1e8 + 1 == 1: the order shows.
        let parts: [&[f32]; 3] = [&[1e8], &[1.0], &[-1e8]];
        sum_in_rank_order(&mut out, parts.into_iter());
        assert_eq!(out[0], 0.0);
    }

    #[cfg(feature = "mpi")]
    #[test]
    fn headers_round_trip() {
        let headers = [
            Header::new(Op::BroadcastBytes, 1, 17),
            Header::new(Op::Barrier, 0, 0),
        ];
        let words: Vec<u64> = headers.iter().flat_map(Header::encode).collect();
        assert_eq!(Header::decode_all(&words), Ok(headers.to_vec()));
        let bad = [99, 0, 0, 0, 0, 0];
        assert!(matches!(
            Header::decode_all(&bad),
            Err(DistError::CollectiveMismatch { .. })
        ));
    }
}
