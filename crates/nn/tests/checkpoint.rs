//! Checkpoints: bit-identical round trips, resume == uninterrupted training,
//! clear errors for truncated, corrupted and mismatched files, and atomic saves.

use std::path::Path;

use gradlab_conv::{Conv2dSpec, Pool2dSpec};
use gradlab_nn::*;
use gradlab_tensor::{Element, Tensor};
use proptest::prelude::*;

fn cnn<T: Element>(seed: u64) -> Sequential<T> {
    let mut net = Sequential::new(&Scope::new(seed).pp("net"));
    net.add(|s| {
        Conv2d::new(
            s,
            Conv2dSpec::new(1, 3, 3).padding(1),
            Conv2dConfig::kaiming_no_bias(),
        )
    })
    .unwrap()
    .add(|s| BatchNorm2d::new(s, 3, BatchNormConfig::default()))
    .unwrap()
    .add(|s| Ok(Activation::relu(s)))
    .unwrap()
    .add(|s| MaxPool2d::new(s, Pool2dSpec::new(2)))
    .unwrap()
    .add(|s| Ok(Flatten::new(s)))
    .unwrap()
    .add(|s| Dropout::new(s, 0.2))
    .unwrap()
    .add(|s| Linear::new(s, 3 * 3 * 3, 2, LinearConfig::default()))
    .unwrap();
    net
}

fn batch(step: u64) -> (Tensor<f32>, Vec<usize>) {
    let x = Tensor::rand_normal(&[4, 1, 6, 6], 0.0, 1.0, 100 + step).unwrap();
    (x, vec![0, 1, (step % 2) as usize, 1])
}

fn bits(m: &dyn HasParams<f32>) -> Vec<(String, Vec<u32>)> {
    m.params()
        .iter()
        .map(|p| {
            (
                p.name().to_string(),
                p.value().as_slice().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

fn train_step(m: &mut Sequential<f32>, opt: &mut dyn Optimizer<f32>, step: u64) {
    let schedule = CosineAnnealing::new(0.1, 0.01, 10).unwrap();
    let (x, y) = batch(step);
    let mut cx = Ctx::new().with_seed(step);
    let x = cx.input(x);
    let logits = m.forward(&mut cx, x).unwrap();
    let loss = cross_entropy(&mut cx, logits, &y, &CrossEntropyOptions::default()).unwrap();
    let grads = cx.backward(loss).unwrap();
    opt.set_lr(schedule.lr(step));
    opt.step(m, &grads).unwrap();
}

fn sgd() -> Sgd<f32> {
    Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        ..Default::default()
    })
    .unwrap()
}

fn adam() -> Adam<f32> {
    Adam::new(AdamConfig::adamw()).unwrap()
}

#[test]
fn round_trip_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut m = cnn::<f32>(1);
    let mut opt = sgd();
    for step in 0..3 {
        train_step(&mut m, &mut opt, step);
    }
    let meta = CheckpointMeta::new("small-cnn", 3).with_extra(serde_json::json!({"seed": 1}));
    save_checkpoint(&path, &m, Some(&opt), &meta).unwrap();

    let mut fresh = cnn::<f32>(2);
    let mut fresh_opt = sgd();
    assert_ne!(bits(&fresh), bits(&m));
    let loaded = load_checkpoint(&path, &mut fresh, Some(&mut fresh_opt)).unwrap();
    assert_eq!(bits(&fresh), bits(&m));
    assert_eq!(fresh_opt.state(), opt.state());
    assert_eq!(loaded.architecture, "small-cnn");
    assert_eq!(loaded.step, 3);
    assert_eq!(loaded.dtype, "F32");
    assert_eq!(loaded.gradlab_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(loaded.extra["seed"], 1);
    let om = loaded.optimizer.unwrap();
    assert_eq!((om.kind.as_str(), om.steps), ("sgd", 3));
    assert_eq!(read_checkpoint_meta(&path).unwrap().step, 3);
}

fn resume_equals_uninterrupted(make_opt: fn() -> Box<dyn Optimizer<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.safetensors");

    let mut straight = cnn::<f32>(5);
    let mut opt = make_opt();
    for step in 0..6 {
        train_step(&mut straight, opt.as_mut(), step);
    }

    let mut first = cnn::<f32>(5);
    let mut opt1 = make_opt();
    for step in 0..3 {
        train_step(&mut first, opt1.as_mut(), step);
    }
    save_checkpoint(
        &path,
        &first,
        Some(opt1.as_ref()),
        &CheckpointMeta::new("small-cnn", 3),
    )
    .unwrap();
    drop((first, opt1));

    let mut resumed = cnn::<f32>(99); // different init: everything must come from the file
    let mut opt2 = make_opt();
    let meta = load_checkpoint(&path, &mut resumed, Some(opt2.as_mut())).unwrap();
    for step in meta.step..6 {
        train_step(&mut resumed, opt2.as_mut(), step);
    }
    assert_eq!(bits(&resumed), bits(&straight));
    assert_eq!(opt2.state(), opt.state());
}

#[test]
fn resume_equals_uninterrupted_sgd() {
    resume_equals_uninterrupted(|| Box::new(sgd()));
}

#[test]
fn resume_equals_uninterrupted_adamw() {
    resume_equals_uninterrupted(|| Box::new(adam()));
}

fn saved(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("c.safetensors");
    let m = cnn::<f32>(1);
    let mut opt = sgd();
    let mut m2 = cnn::<f32>(1);
    train_step(&mut m2, &mut opt, 0);
    save_checkpoint(&path, &m, Some(&opt), &CheckpointMeta::new("small-cnn", 1)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn every_truncation_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = saved(dir.path());
    let cut = dir.path().join("cut.safetensors");
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let mut m = cnn::<f32>(1);
        let before = bits(&m);
        match load_checkpoint(&cut, &mut m, None) {
            Err(NnError::CorruptCheckpoint { path, reason }) => {
                assert_eq!(path, cut);
                assert!(!reason.is_empty());
            }
            other => panic!("truncated to {len} bytes: expected CorruptCheckpoint, got {other:?}"),
        }
        assert_eq!(bits(&m), before);
    }
    // The intact file loads.
    load_checkpoint(&path, &mut cnn::<f32>(1), None).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random damage to the header or data never panics; if the structure
    /// survives, loading either succeeds or reports a mismatch.
    #[test]
    fn corrupted_bytes_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut bytes) = saved(dir.path());
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for (i, b) in flips {
            // Mostly the header, where structure lives.
            let at = i.index(header.min(bytes.len()));
            bytes[at] ^= b | 1;
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = load_checkpoint(&path, &mut cnn::<f32>(1), Some(&mut sgd()));
        let _ = read_checkpoint_meta(&path);
    }
}

#[test]
fn wrong_shape_names_the_tensor_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fc.safetensors");
    let small = Linear::<f32>::new(&Scope::new(0).pp("fc"), 3, 2, LinearConfig::default()).unwrap();
    save_checkpoint(&path, &small, None, &CheckpointMeta::new("fc", 0)).unwrap();
    let mut wide =
        Linear::<f32>::new(&Scope::new(0).pp("fc"), 4, 2, LinearConfig::default()).unwrap();
    let before = bits(&wide);
    let err = load_checkpoint(&path, &mut wide, None).unwrap_err();
    match &err {
        NnError::ShapeMismatch {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(name, "fc.weight");
            assert_eq!(expected, &[2, 4]);
            assert_eq!(found, &[2, 3]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("fc.weight"));
    assert_eq!(bits(&wide), before);
}

#[test]
fn missing_and_unexpected_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let no_bias = Linear::<f32>::new(
        &Scope::new(0).pp("fc"),
        3,
        2,
        LinearConfig {
            bias: false,
            ..Default::default()
        },
    )
    .unwrap();
    save_checkpoint(&path, &no_bias, None, &CheckpointMeta::new("fc", 0)).unwrap();
    let mut with_bias =
        Linear::<f32>::new(&Scope::new(0).pp("fc"), 3, 2, LinearConfig::default()).unwrap();
    match load_checkpoint(&path, &mut with_bias, None) {
        Err(NnError::MissingTensor { name, .. }) => assert_eq!(name, "fc.bias"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }

    save_checkpoint(&path, &with_bias, None, &CheckpointMeta::new("fc", 0)).unwrap();
    let mut no_bias = no_bias;
    match load_checkpoint(&path, &mut no_bias, None) {
        Err(NnError::UnexpectedTensor { name, .. }) => assert_eq!(name, "fc.bias"),
        other => panic!("expected UnexpectedTensor, got {other:?}"),
    }
}

#[test]
fn dtype_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f64.safetensors");
    save_checkpoint(
        &path,
        &cnn::<f64>(1),
        None,
        &CheckpointMeta::new("small-cnn", 0),
    )
    .unwrap();
    match load_checkpoint(&path, &mut cnn::<f32>(1), None) {
        Err(NnError::DtypeMismatch {
            name,
            expected,
            found,
            ..
        }) => {
            assert_eq!(name, "net.0.weight");
            assert_eq!((expected.as_str(), found.as_str()), ("F32", "F64"));
        }
        other => panic!("expected DtypeMismatch, got {other:?}"),
    }
    // f64 round trip works too.
    let mut m = cnn::<f64>(2);
    load_checkpoint(&path, &mut m, None).unwrap();
    assert_eq!(m.params()[0].value(), cnn::<f64>(1).params()[0].value());
}

#[test]
fn optimizer_state_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.safetensors");
    let m = cnn::<f32>(1);
    save_checkpoint(
        &path,
        &m,
        Some(&sgd()),
        &CheckpointMeta::new("small-cnn", 0),
    )
    .unwrap();
    assert!(matches!(
        load_checkpoint(&path, &mut cnn::<f32>(1), Some(&mut adam())),
        Err(NnError::OptimizerMismatch { .. })
    ));
    save_checkpoint(&path, &m, None, &CheckpointMeta::new("small-cnn", 0)).unwrap();
    assert!(matches!(
        load_checkpoint(&path, &mut cnn::<f32>(1), Some(&mut sgd())),
        Err(NnError::CorruptCheckpoint { .. })
    ));
    // Without an optimizer, optimizer state in the file is ignored.
    save_checkpoint(
        &path,
        &m,
        Some(&sgd()),
        &CheckpointMeta::new("small-cnn", 0),
    )
    .unwrap();
    load_checkpoint(&path, &mut cnn::<f32>(1), None).unwrap();
}

#[test]
fn interrupted_save_leaves_the_old_checkpoint_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut m = cnn::<f32>(1);
    let mut opt = sgd();
    save_checkpoint(&path, &m, Some(&opt), &CheckpointMeta::new("small-cnn", 0)).unwrap();
    let old = bits(&m);

    train_step(&mut m, &mut opt, 0);
    let pending =
        prepare_checkpoint(&path, &m, Some(&opt), &CheckpointMeta::new("small-cnn", 1)).unwrap();
    let tmp = pending.temp_path().to_path_buf();
    assert!(tmp.exists());
    assert_eq!(tmp.parent(), path.parent());
    // The process dies after the temporary file is written, before the rename.
    std::mem::forget(pending);

    let mut loaded = cnn::<f32>(7);
    let meta = load_checkpoint(&path, &mut loaded, None).unwrap();
    assert_eq!(meta.step, 0);
    assert_eq!(bits(&loaded), old);

    // A half-written temporary file beside it does not matter either.
    std::fs::write(
        dir.path().join(".ckpt.safetensors.tmp-1-1"),
        b"\x10\x00\x00",
    )
    .unwrap();
    load_checkpoint(&path, &mut loaded, None).unwrap();
    std::fs::remove_file(&tmp).unwrap();

    // A dropped (not committed) pending save removes its temporary file.
    let pending =
        prepare_checkpoint(&path, &m, None, &CheckpointMeta::new("small-cnn", 1)).unwrap();
    let tmp = pending.temp_path().to_path_buf();
    drop(pending);
    assert!(!tmp.exists());

    // A committed save replaces the old file.
    save_checkpoint(&path, &m, Some(&opt), &CheckpointMeta::new("small-cnn", 1)).unwrap();
    let meta = load_checkpoint(&path, &mut loaded, None).unwrap();
    assert_eq!(meta.step, 1);
    assert_eq!(bits(&loaded), bits(&m));
}

#[test]
fn io_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let err = load_checkpoint(&missing, &mut cnn::<f32>(1), None).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }));
    assert!(err.to_string().contains("nope.safetensors"));
    let in_missing_dir = dir.path().join("no/such/dir/c.safetensors");
    assert!(matches!(
        save_checkpoint(
            &in_missing_dir,
            &cnn::<f32>(1),
            None,
            &CheckpointMeta::new("x", 0)
        ),
        Err(NnError::Io { .. })
    ));
}

#[cfg(unix)]
#[test]
fn saving_through_a_symlink_keeps_the_link_and_special_files_are_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("run-7.safetensors");
    let link = dir.path().join("latest.safetensors");
    std::os::unix::fs::symlink("run-7.safetensors", &link).unwrap();
    let m = cnn::<f32>(1);
    save_checkpoint(&link, &m, None, &CheckpointMeta::new("small-cnn", 2)).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(read_checkpoint_meta(&target).unwrap().step, 2);

    let fifo = dir.path().join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = save_checkpoint(&fifo, &m, None, &CheckpointMeta::new("small-cnn", 2)).unwrap_err();
    assert!(matches!(err, NnError::NotRegularFile { .. }), "{err:?}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Sets element `index` of the tensor `name` of `m` to `value`.
fn poison(m: &mut dyn HasParams<f32>, name: &str, index: usize, value: f32) {
    let mut found = false;
    m.visit_params_mut(&mut |p| {
        if p.name() == name {
            p.data_mut()[index] = value;
            found = true;
        }
    });
    assert!(found, "no tensor {name}");
}

#[test]
fn non_finite_values_are_never_saved_and_the_old_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut m = cnn::<f32>(1);
    let mut opt = sgd();
    train_step(&mut m, &mut opt, 0);
    save_checkpoint(&path, &m, Some(&opt), &CheckpointMeta::new("small-cnn", 1)).unwrap();
    let old = std::fs::read(&path).unwrap();

    // A BatchNorm running variance (a buffer) that overflowed.
    let mut bad = cnn::<f32>(1);
    poison(&mut bad, "net.1.running_var", 2, f32::INFINITY);
    let err = save_checkpoint(&path, &bad, None, &CheckpointMeta::new("small-cnn", 2)).unwrap_err();
    match &err {
        NnError::NonFiniteTensor {
            path: p,
            name,
            index,
            value,
        } => {
            assert_eq!(p, &path);
            assert_eq!(name, "net.1.running_var");
            assert_eq!(*index, 2);
            assert_eq!(*value, f64::INFINITY);
        }
        other => panic!("expected NonFiniteTensor, got {other:?}"),
    }
    assert!(err.to_string().contains("net.1.running_var"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), old);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );

    // A NaN weight.
    let mut bad = cnn::<f32>(1);
    poison(&mut bad, "net.6.weight", 0, f32::NAN);
    assert!(matches!(
        checkpoint_bytes(&bad, None, &CheckpointMeta::new("small-cnn", 2)),
        Err(NnError::NonFiniteTensor { ref name, index: 0, .. }) if name == "net.6.weight"
    ));

    // Non-finite optimizer state (a momentum buffer).
    let mut state = opt.state();
    let (slot, t) = &mut state.tensors[0];
    let slot = slot.clone();
    let mut values = t.as_slice().to_vec();
    values[1] = f32::NEG_INFINITY;
    *t = Tensor::from_vec(t.shape(), values).unwrap();
    let mut bad_opt = sgd();
    bad_opt.load_state(state).unwrap();
    match save_checkpoint(
        &path,
        &m,
        Some(&bad_opt),
        &CheckpointMeta::new("small-cnn", 2),
    ) {
        Err(NnError::NonFiniteTensor { name, index, .. }) => {
            assert_eq!(name, format!("optim/{slot}"));
            assert_eq!(index, 1);
        }
        other => panic!("expected NonFiniteTensor, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), old);
}

#[test]
fn identical_saves_write_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = cnn::<f32>(3);
    let mut opt = adam();
    train_step(&mut m, &mut opt, 0);
    let meta = CheckpointMeta::new("small-cnn", 1)
        .with_extra(serde_json::json!({"seed": 3, "data": "patterns", "a": [1, 2]}));
    let first = checkpoint_bytes(&m, Some(&opt), &meta).unwrap();
    // Each save builds its header afresh; with hash-map order (random per
    // map) the key order would differ between saves.
    for i in 0..16 {
        let path = dir.path().join(format!("c{i}.safetensors"));
        save_checkpoint(&path, &m, Some(&opt), &meta).unwrap();
        // (assert! rather than assert_eq!: the bytes would flood the output)
        assert!(std::fs::read(&path).unwrap() == first, "save {i} differs");
    }
}

/// Start of the data region: 8 bytes of header length, then the header.
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn a_bit_flip_in_the_tensor_data_is_a_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = saved(dir.path());
    let meta = load_checkpoint(&path, &mut cnn::<f32>(1), None).unwrap();
    assert_eq!(meta.checksum, DataChecksum::Verified);

    let start = data_start(&bytes);
    for at in [start, (start + bytes.len()) / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x04;
        std::fs::write(&path, &damaged).unwrap();
        let mut m = cnn::<f32>(2);
        let before = bits(&m);
        let err = load_checkpoint(&path, &mut m, Some(&mut sgd())).unwrap_err();
        match &err {
            NnError::ChecksumMismatch {
                path: p,
                expected,
                found,
            } => {
                assert_eq!(p, &path);
                assert_ne!(expected, found);
            }
            other => panic!("flip at {at}: expected ChecksumMismatch, got {other:?}"),
        }
        assert!(err.to_string().contains("c.safetensors"), "{err}");
        assert_eq!(bits(&m), before);
    }
}

#[test]
fn a_checkpoint_without_checksum_loads_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other-tool.safetensors");
    let m = cnn::<f32>(4);
    // What another tool (or an older gradlab) writes: the gradlab metadata,
    // no checksum.
    let mut meta = CheckpointMeta::new("small-cnn", 5);
    meta.dtype = "F32".into();
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = m
        .params()
        .iter()
        .map(|p| {
            let bytes = p.value().as_slice().iter().flat_map(|v| v.to_le_bytes());
            (p.name().to_string(), p.shape().to_vec(), bytes.collect())
        })
        .collect();
    let tensors = raw.iter().map(|(name, shape, bytes)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes);
        (name.as_str(), view.unwrap())
    });
    let header = std::collections::HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("gradlab".to_string(), serde_json::to_string(&meta).unwrap()),
    ]);
    let bytes = safetensors::serialize(tensors, Some(header)).unwrap();
    std::fs::write(&path, bytes).unwrap();

    let mut fresh = cnn::<f32>(9);
    let loaded = load_checkpoint(&path, &mut fresh, None).unwrap();
    assert_eq!(loaded.checksum, DataChecksum::Absent);
    assert_eq!(loaded.step, 5);
    assert_eq!(bits(&fresh), bits(&m));
    assert_eq!(
        read_checkpoint_meta(&path).unwrap().checksum,
        DataChecksum::Absent
    );
}

#[test]
fn a_mismatch_names_the_model_the_checkpoint_was_saved_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fc.safetensors");
    let small = Linear::<f32>::new(&Scope::new(0).pp("fc"), 3, 2, LinearConfig::default()).unwrap();
    let meta = CheckpointMeta::new("fc", 0).with_model("linear:in=3,out=2");
    save_checkpoint(&path, &small, None, &meta).unwrap();
    let loaded = load_checkpoint(&path, &mut small.clone(), None).unwrap();
    assert_eq!(loaded.model.as_deref(), Some("linear:in=3,out=2"));

    let mut wide =
        Linear::<f32>::new(&Scope::new(0).pp("fc"), 4, 2, LinearConfig::default()).unwrap();
    let before = bits(&wide);
    let err = load_checkpoint(&path, &mut wide, None).unwrap_err();
    match &err {
        NnError::ModelMismatch {
            path: p,
            checkpoint_model,
            tensor,
            mismatch,
        } => {
            assert_eq!(p, &path);
            assert_eq!(checkpoint_model, "linear:in=3,out=2");
            assert_eq!(tensor, "fc.weight");
            assert!(matches!(**mismatch, NnError::ShapeMismatch { .. }));
        }
        other => panic!("expected ModelMismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("linear:in=3,out=2"), "{text}");
    assert!(text.contains("fc.weight"), "{text}");
    assert_eq!(bits(&wide), before);
}
