//! LocalComm: a group of one, every collective leaves the data as it is.

use gradlab_dist::{check_same_config, Communicator, DistError, LocalComm};

#[test]
fn collectives_are_no_ops() {
    let comm = LocalComm;
    assert_eq!((comm.rank(), comm.size()), (0, 1));
    let mut a = [1.0f32, -0.0, f32::MAX];
    comm.all_reduce_sum_f32(&mut a).unwrap();
    assert_eq!(
        a.map(f32::to_bits),
        [1.0f32, -0.0, f32::MAX].map(f32::to_bits)
    );
    let mut b = [2.5f64];
    comm.all_reduce_sum_f64(&mut b).unwrap();
    comm.broadcast_f64(&mut b, 0).unwrap();
    assert_eq!(b, [2.5]);
    let mut c = [3.0f32];
    comm.broadcast_f32(&mut c, 0).unwrap();
    assert_eq!(c, [3.0]);
    let mut bytes = b"config".to_vec();
    comm.broadcast_bytes(&mut bytes, 0).unwrap();
    assert_eq!(bytes, b"config");
    comm.all_reduce_sum_f32(&mut []).unwrap();
    comm.barrier().unwrap();
    check_same_config(&comm, b"anything").unwrap();
}

#[test]
fn a_root_other_than_zero_is_an_error() {
    let comm = LocalComm;
    assert_eq!(
        comm.broadcast_f32(&mut [1.0], 1),
        Err(DistError::RootOutOfRange {
            op: "broadcast_f32",
            root: 1,
            size: 1
        })
    );
    assert!(comm.broadcast_bytes(&mut Vec::new(), 3).is_err());
}
