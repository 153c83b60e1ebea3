//! ThreadComm and run_ranks: results against a sum computed in one thread,
//! bit for bit, and errors instead of hangs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use gradlab_dist::{check_same_config, run_ranks, Communicator, DistError, ThreadComm};
use proptest::prelude::*;

/// Runs `f` on another thread and fails the test if it has not finished in
/// 10 seconds: a hang becomes a failure instead of a stuck test run.
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("no result within 10 s: a rank hangs"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the scenario panicked"),
    }
}

/// The reference: element-wise sum in rank order, rank 0's value first.
fn rank_order_sum<T: Copy + std::ops::AddAssign>(per_rank: &[Vec<T>]) -> Vec<T> {
    let mut sum = per_rank[0].clone();
    for part in &per_rank[1..] {
        for (s, x) in sum.iter_mut().zip(part) {
            *s += *x;
        }
    }
    sum
}

/// Values spread over many binary orders of magnitude, so that the order
/// of addition changes the rounded result.
fn spread_f32() -> impl Strategy<Value = f32> + Clone {
    (-1.0f32..1.0, -24i32..24).prop_map(|(m, e)| m * 2f32.powi(e))
}

fn spread_f64() -> impl Strategy<Value = f64> + Clone {
    (-1.0f64..1.0, -60i32..60).prop_map(|(m, e)| m * 2f64.powi(e))
}

/// 1 to 4 ranks, each with a vector of the same length (0 to 16).
fn per_rank<T: std::fmt::Debug>(
    element: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = Vec<Vec<T>>> {
    (1usize..=4, 0usize..=16).prop_flat_map(move |(ranks, len)| {
        prop::collection::vec(prop::collection::vec(element.clone(), len), ranks)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn all_reduce_f32_is_the_rank_order_sum_on_every_rank(data in per_rank(spread_f32())) {
        let expected: Vec<u32> = rank_order_sum(&data).iter().map(|x| x.to_bits()).collect();
        let results = run_ranks(data.len(), |comm| {
            let mut x = data[comm.rank()].clone();
            comm.all_reduce_sum_f32(&mut x).map(|()| x)
        }).unwrap();
        for (rank, result) in results.into_iter().enumerate() {
            let bits: Vec<u32> = result.unwrap().iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(&bits, &expected, "rank {}", rank);
        }
    }

    #[test]
    fn all_reduce_f64_is_the_rank_order_sum_on_every_rank(data in per_rank(spread_f64())) {
        let expected: Vec<u64> = rank_order_sum(&data).iter().map(|x| x.to_bits()).collect();
        let results = run_ranks(data.len(), |comm| {
            let mut x = data[comm.rank()].clone();
            comm.all_reduce_sum_f64(&mut x).map(|()| x)
        }).unwrap();
        for (rank, result) in results.into_iter().enumerate() {
            let bits: Vec<u64> = result.unwrap().iter().map(|x| x.to_bits()).collect();
            prop_assert_eq!(&bits, &expected, "rank {}", rank);
        }
    }

    #[test]
    fn broadcast_copies_the_root_everywhere(
        data in per_rank(spread_f64()),
        root_seed in 0usize..4,
        bytes in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let root = root_seed % data.len();
        let results = run_ranks(data.len(), |comm| -> Result<_, DistError> {
            let mut x64 = data[comm.rank()].clone();
            comm.broadcast_f64(&mut x64, root)?;
            let mut x32: Vec<f32> = data[comm.rank()].iter().map(|v| *v as f32).collect();
            comm.broadcast_f32(&mut x32, root)?;
            // Receivers start with buffers of other lengths.
            let mut b = if comm.rank() == root { bytes.clone() } else { vec![7; comm.rank()] };
            comm.broadcast_bytes(&mut b, root)?;
            Ok((x64, x32, b))
        }).unwrap();
        let root32: Vec<f32> = data[root].iter().map(|v| *v as f32).collect();
        for result in results {
            let (x64, x32, b) = result.unwrap();
            prop_assert_eq!(&x64, &data[root]);
            prop_assert_eq!(&x32, &root32);
            prop_assert_eq!(&b, &bytes);
        }
    }
}

#[test]
fn the_reduction_order_is_visible_and_fixed() {
    // In f32, (1e8 - 1e8) + 1 == 1, while (1 - 1e8) + 1e8 == 0 and
    // (1e8 + 1) - 1e8 == 0: only the rank order 0, 1, 2 gives 1 here, every
    // time.
    for _ in 0..20 {
        let results = within_10s(|| {
            run_ranks(3, |comm| {
                let mut x = [[1e8f32], [-1e8], [1.0]][comm.rank()];
                comm.all_reduce_sum_f32(&mut x).map(|()| x[0])
            })
            .unwrap()
        });
        for result in results {
            assert_eq!(result.unwrap().to_bits(), 1.0f32.to_bits());
        }
    }
}

#[test]
fn many_rounds_do_not_mix_up() {
    let rounds = 2000;
    let results = within_10s(move || {
        run_ranks(4, move |comm| -> Result<(), DistError> {
            for round in 0..rounds {
                let mut x = [(comm.rank() + round) as f64];
                comm.all_reduce_sum_f64(&mut x)?;
                assert_eq!(x[0], (6 + 4 * round) as f64);
                if round % 7 == 0 {
                    comm.barrier()?;
                }
            }
            Ok(())
        })
        .unwrap()
    });
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[test]
fn barrier_waits_for_every_rank() {
    let arrived = AtomicUsize::new(0);
    let results = run_ranks(4, |comm| {
        // Late ranks are late on purpose.
        thread::sleep(Duration::from_millis(20 * comm.rank() as u64));
        arrived.fetch_add(1, Ordering::SeqCst);
        comm.barrier()?;
        Ok::<_, DistError>(arrived.load(Ordering::SeqCst))
    })
    .unwrap();
    for seen in results {
        assert_eq!(seen.unwrap(), 4);
    }
}

#[test]
fn same_config_passes_and_a_mismatch_is_reported_on_every_rank() {
    let same = run_ranks(3, |comm| check_same_config(&comm, b"{\"lr\":0.1}")).unwrap();
    assert!(same.iter().all(Result::is_ok));

    let results = within_10s(|| {
        run_ranks(4, |comm| {
            let config: &[u8] = match comm.rank() {
                1 => b"{\"lr\":0.2}",
                3 => b"{\"lr\":0.1,\"seed\":1}",
                _ => b"{\"lr\":0.1}",
            };
            check_same_config(&comm, config)
        })
        .unwrap()
    });
    for result in results {
        let err = result.unwrap_err();
        assert_eq!(
            err,
            DistError::ConfigMismatch {
                ranks: vec![1, 3],
                size: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "configuration differs from rank 0's on ranks [1, 3] (of 4 ranks)"
        );
    }
}

#[test]
fn length_mismatch_is_an_error_on_every_rank_and_the_group_goes_on() {
    let results = within_10s(|| {
        run_ranks(3, |comm| {
            let mut x = vec![1.0f32; 2 + comm.rank() % 2];
            let first = comm.all_reduce_sum_f32(&mut x);
            // The round completed: the next collective works.
            let mut y = [1.0f32];
            let second = comm.all_reduce_sum_f32(&mut y).map(|()| y[0]);
            (first, second)
        })
        .unwrap()
    });
    for (first, second) in results {
        let err = first.unwrap_err();
        assert_eq!(
            err,
            DistError::LengthMismatch {
                op: "all_reduce_sum_f32",
                lengths: vec![2, 3, 2]
            }
        );
        assert_eq!(
            err.to_string(),
            "all_reduce_sum_f32: buffer lengths differ between ranks: \
             rank 0: 2, rank 1: 3, rank 2: 2"
        );
        assert_eq!(second, Ok(3.0));
    }
}

#[test]
fn broadcast_length_mismatch_and_bad_root_are_errors() {
    let results = within_10s(|| {
        run_ranks(2, |comm| {
            let mut x = vec![0.0f64; 1 + comm.rank()];
            let lengths = comm.broadcast_f64(&mut x, 0);
            let mut y = [0.0f32];
            let root = comm.broadcast_f32(&mut y, 2);
            let mut b = Vec::new();
            let bytes_root = comm.broadcast_bytes(&mut b, 5);
            (lengths, root, bytes_root)
        })
        .unwrap()
    });
    for (lengths, root, bytes_root) in results {
        assert!(matches!(lengths, Err(DistError::LengthMismatch { .. })));
        assert_eq!(
            root,
            Err(DistError::RootOutOfRange {
                op: "broadcast_f32",
                root: 2,
                size: 2
            })
        );
        assert!(matches!(
            bytes_root,
            Err(DistError::RootOutOfRange { root: 5, .. })
        ));
    }
}

#[test]
fn different_collectives_are_an_error_on_every_rank() {
    let results = within_10s(|| {
        run_ranks(2, |comm| {
            if comm.rank() == 0 {
                comm.barrier()
            } else {
                comm.broadcast_f32(&mut [1.0], 1)
            }
        })
        .unwrap()
    });
    for result in results {
        assert_eq!(
            result,
            Err(DistError::CollectiveMismatch {
                calls: vec!["barrier".into(), "broadcast_f32(root 1)".into()]
            })
        );
    }
}

#[test]
fn a_panicking_rank_releases_the_others() {
    let (outcome, others) = within_10s(|| {
        let (tx, rx) = mpsc::channel();
        let outcome = run_ranks(3, move |comm| {
            if comm.rank() == 1 {
                // Let the others wait in the collective first.
                thread::sleep(Duration::from_millis(100));
                panic!("bad batch");
            }
            let mut x = [1.0f32];
            tx.send(comm.all_reduce_sum_f32(&mut x)).unwrap();
        });
        (outcome, rx.try_iter().collect::<Vec<_>>())
    });
    assert_eq!(
        outcome,
        Err(DistError::RankPanicked {
            rank: 1,
            message: "bad batch".into()
        })
    );
    assert_eq!(others.len(), 2);
    for result in others {
        let err = result.unwrap_err();
        assert_eq!(
            err,
            DistError::RankLeft {
                rank: 1,
                panicking: true
            }
        );
        assert_eq!(
            err.to_string(),
            "rank 1 panicked before this collective completed"
        );
    }
}

#[test]
fn an_aborting_rank_releases_the_others_pending_and_future_collectives() {
    let (outcome, others) = within_10s(|| {
        let (tx, rx) = mpsc::channel();
        let outcome = run_ranks(4, move |comm| {
            if comm.rank() == 2 {
                thread::sleep(Duration::from_millis(100));
                comm.abort(7, "loss is NaN");
            }
            let pending = comm.barrier();
            let future = comm.broadcast_bytes(&mut Vec::new(), 0);
            tx.send((pending, future)).unwrap();
        });
        (outcome, rx.try_iter().collect::<Vec<_>>())
    });
    let aborted = DistError::Aborted {
        rank: 2,
        code: 7,
        message: "loss is NaN".into(),
    };
    assert_eq!(outcome, Err(aborted.clone()));
    assert_eq!(
        aborted.to_string(),
        "rank 2 aborted the group with code 7: loss is NaN"
    );
    assert_eq!(others.len(), 3);
    for (pending, future) in others {
        assert_eq!(pending, Err(aborted.clone()));
        assert_eq!(future, Err(aborted.clone()));
    }
}

#[test]
fn a_rank_that_returns_early_releases_the_others() {
    let results = within_10s(|| {
        run_ranks(3, |comm| {
            if comm.rank() == 0 {
                return Ok(());
            }
            comm.all_reduce_sum_f64(&mut [1.0, 2.0])
        })
        .unwrap()
    });
    assert_eq!(results[0], Ok(()));
    for result in &results[1..] {
        assert_eq!(
            *result,
            Err(DistError::RankLeft {
                rank: 0,
                panicking: false
            })
        );
    }
}

#[test]
fn dropping_a_communicator_of_a_group_releases_a_waiting_rank() {
    let result = within_10s(|| {
        let mut comms = ThreadComm::group(2);
        let second = comms.pop().unwrap();
        let first = comms.pop().unwrap();
        let waiter = thread::spawn(move || first.barrier());
        thread::sleep(Duration::from_millis(100));
        drop(second);
        waiter.join().unwrap()
    });
    assert_eq!(
        result,
        Err(DistError::RankLeft {
            rank: 1,
            panicking: false
        })
    );
}

#[test]
fn finishing_together_is_not_an_error() {
    // The last collective completed on every rank before any rank dropped
    // its communicator; a slow reader still gets its result.
    let results = run_ranks(3, |comm| {
        let mut x = [comm.rank() as f32];
        comm.all_reduce_sum_f32(&mut x)?;
        if comm.rank() == 0 {
            thread::sleep(Duration::from_millis(50));
        }
        Ok::<_, DistError>(x[0])
    })
    .unwrap();
    assert!(results.into_iter().all(|r| r == Ok(3.0)));
}

#[test]
fn boxed_dyn_communicators_and_empty_groups() {
    let results = run_ranks(2, |comm| {
        let comm: Box<dyn Communicator> = Box::new(comm);
        let mut x = [1.0f64; 3];
        comm.all_reduce_sum_f64(&mut x)
            .map(|()| (comm.rank(), comm.size(), x))
    })
    .unwrap();
    assert_eq!(results[1], Ok((1, 2, [2.0; 3])));
    assert_eq!(run_ranks(0, |comm| comm.rank()), Ok(Vec::new()));
    assert!(ThreadComm::group(0).is_empty());
}
