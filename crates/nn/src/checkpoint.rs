//! Crash-safe checkpoints in the safetensors format.
//!
//! # Format
//! One safetensors file holding
//! - every parameter and buffer of the model under its dotted name
//!   (`features.0.weight`, `features.1.running_mean`), row-major,
//!   little-endian, dtype `F32` or `F64` as the model's element type;
//! - the optimizer state, if saved, under `optim/<slot>/<parameter name>`
//!   (`optim/momentum_buffer/features.0.weight`, `optim/exp_avg/...`);
//! - the safetensors metadata header with `format = "gradlab-checkpoint"` and
//!   `gradlab` = the JSON of [`CheckpointMeta`]: architecture name, gradlab
//!   version, dtype, training step counter, optimizer kind, step count and
//!   learning rate, and free-form `extra` JSON.
//!
//! # Atomicity
//! [`save_checkpoint`] serialises to memory, then saves with
//! [`write_atomic`](crate::write_atomic)'s machinery: a temporary file in the
//! destination's folder, fsynced, renamed over the destination, the folder
//! fsynced. A crash at any point leaves either the old file or the new one,
//! never a mix. [`prepare_checkpoint`] and [`PendingCheckpoint::commit`] are
//! the two halves.
//!
//! # Loading
//! [`load_checkpoint`] reads the whole file, validates the safetensors
//! structure (a truncated or corrupted file is an error, never a panic),
//! then checks every name, shape and dtype against the model (and the
//! optimizer), reporting the first mismatch in the model's order; only when
//! everything fits does it write anything.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use gradlab_tensor::{Element, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

use crate::atomic_file::StagedFile;
use crate::error::{NnError, Result};
use crate::module::HasParams;
use crate::optim::{Optimizer, OptimizerState};

/// The value of the `format` key of the safetensors metadata.
pub const CHECKPOINT_FORMAT: &str = "gradlab-checkpoint";

const OPTIM_PREFIX: &str = "optim/";

/// What the optimizer's part of a checkpoint was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerMeta {
    /// `"sgd"`, `"adam"` or `"adamw"`.
    pub kind: String,
    /// Updates it had applied.
    pub steps: u64,
    /// Its learning rate.
    pub lr: f64,
}

/// The JSON metadata of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Name of the architecture (`"resnet20"`, `"small-cnn"`...).
    pub architecture: String,
    /// The training step counter at the time of saving.
    pub step: u64,
    /// Version of gradlab that wrote the file (set by [`save_checkpoint`]).
    pub gradlab_version: String,
    /// Element type of the tensors, `"F32"` or `"F64"` (set on save).
    pub dtype: String,
    /// The optimizer's kind, step count and rate, when its state was saved
    /// (set on save).
    pub optimizer: Option<OptimizerMeta>,
    /// Anything else the caller wants to keep (configuration, seeds...).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl CheckpointMeta {
    /// Metadata for `architecture` at training step `step`.
    pub fn new(architecture: impl Into<String>, step: u64) -> Self {
        CheckpointMeta {
            architecture: architecture.into(),
            step,
            gradlab_version: env!("CARGO_PKG_VERSION").into(),
            dtype: String::new(),
            optimizer: None,
            extra: serde_json::Value::Null,
        }
    }

    /// The same, with `extra` JSON.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = extra;
        self
    }
}

/// A tensor as little-endian bytes, for serialisation.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<T: Element>() -> Result<Dtype> {
    match T::DTYPE {
        "F32" => Ok(Dtype::F32),
        "F64" => Ok(Dtype::F64),
        other => Err(NnError::config(
            "checkpoint",
            format!("element type {other} cannot be stored"),
        )),
    }
}

fn to_raw<T: Element>(t: &Tensor<T>) -> Result<Raw> {
    let dtype = dtype_of::<T>()?;
    let s = t.as_slice();
    let bytes = match dtype {
        Dtype::F32 => s
            .iter()
            .flat_map(|x| (x.as_f64() as f32).to_le_bytes())
            .collect(),
        _ => s.iter().flat_map(|x| x.as_f64().to_le_bytes()).collect(),
    };
    Ok(Raw {
        dtype,
        shape: t.shape().to_vec(),
        bytes,
    })
}

fn from_bytes<T: Element>(dtype: Dtype, shape: &[usize], bytes: &[u8]) -> Option<Tensor<T>> {
    let data: Vec<T> = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| T::of_f64(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                T::of_f64(f64::from_le_bytes(b))
            })
            .collect(),
        _ => return None,
    };
    Tensor::from_vec(shape, data).ok()
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> NnError + 'a {
    move |source| NnError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A checkpoint written to a temporary file beside its destination, not yet
/// renamed over it. [`commit`](PendingCheckpoint::commit) finishes the save;
/// dropping it without committing removes the temporary file. Until the
/// commit the previous checkpoint at the destination is untouched.
#[derive(Debug)]
pub struct PendingCheckpoint {
    staged: StagedFile,
}

impl PendingCheckpoint {
    /// The temporary file holding the new checkpoint (beside the file the
    /// destination finally names, symlinks followed).
    pub fn temp_path(&self) -> &Path {
        self.staged.temp_path()
    }

    /// The destination, as given.
    pub fn path(&self) -> &Path {
        self.staged.path()
    }

    /// Renames the temporary file over the destination and fsyncs the folder.
    ///
    /// # Errors
    /// [`NnError::Io`] when the rename or the folder sync fails;
    /// [`NnError::NotRegularFile`] if the destination became a special file
    /// meanwhile.
    pub fn commit(self) -> Result<()> {
        self.staged.commit()
    }
}

/// Serialises `model` (and `optimizer`) to the bytes of a checkpoint file.
///
/// # Errors
/// [`NnError::DuplicateName`] when two tensors share a name;
/// [`NnError::CorruptCheckpoint`] if serialisation fails.
pub fn checkpoint_bytes<T: Element>(
    model: &dyn HasParams<T>,
    optimizer: Option<&dyn Optimizer<T>>,
    meta: &CheckpointMeta,
) -> Result<Vec<u8>> {
    let mut meta = meta.clone();
    meta.dtype = T::DTYPE.to_string();
    meta.gradlab_version = env!("CARGO_PKG_VERSION").to_string();
    let mut raws: Vec<(String, Raw)> = Vec::new();
    let mut names = HashSet::new();
    let mut err = None;
    model.visit_params(&mut |p| {
        if err.is_some() {
            return;
        }
        if !names.insert(p.name().to_string()) {
            err = Some(NnError::DuplicateName {
                name: p.name().to_string(),
            });
            return;
        }
        match to_raw(p.value()) {
            Ok(r) => raws.push((p.name().to_string(), r)),
            Err(e) => err = Some(e),
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    meta.optimizer = match optimizer {
        Some(opt) => {
            let state = opt.state();
            for (name, t) in &state.tensors {
                raws.push((format!("{OPTIM_PREFIX}{name}"), to_raw(t)?));
            }
            Some(OptimizerMeta {
                kind: state.kind,
                steps: state.steps,
                lr: state.lr,
            })
        }
        None => None,
    };
    let json = serde_json::to_string(&meta).map_err(|e| NnError::CorruptCheckpoint {
        path: PathBuf::new(),
        reason: format!("cannot encode metadata: {e}"),
    })?;
    let header = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("gradlab".to_string(), json),
    ]);
    safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), Some(header)).map_err(|e| {
        NnError::CorruptCheckpoint {
            path: PathBuf::new(),
            reason: format!("cannot serialise: {e}"),
        }
    })
}

/// First half of [`save_checkpoint`]: writes the checkpoint to a temporary
/// file in the folder of `path` (of its target, for a symlink) and fsyncs
/// it; the file at `path` is not touched until [`PendingCheckpoint::commit`].
///
/// # Errors
/// Those of [`checkpoint_bytes`]; [`NnError::NotRegularFile`] when `path` is
/// a directory, device, FIFO or socket; [`NnError::Io`] when the temporary
/// file cannot be written or synced.
pub fn prepare_checkpoint<T: Element>(
    path: impl AsRef<Path>,
    model: &dyn HasParams<T>,
    optimizer: Option<&dyn Optimizer<T>>,
    meta: &CheckpointMeta,
) -> Result<PendingCheckpoint> {
    let bytes = checkpoint_bytes(model, optimizer, meta)?;
    let staged = StagedFile::write(path.as_ref(), |w| w.write_all(&bytes))?;
    Ok(PendingCheckpoint { staged })
}

/// Saves `model`'s parameters and buffers, `optimizer`'s state (if given)
/// and `meta` to `path`, atomically.
///
/// The file is safetensors: every parameter and buffer under its dotted
/// name, little-endian in the model's dtype; optimizer state under
/// `optim/<slot>/<parameter name>`; header metadata `format` =
/// [`CHECKPOINT_FORMAT`] and `gradlab` = the JSON of [`CheckpointMeta`]
/// (with the gradlab version, dtype and optimizer kind filled in). It is
/// written to a temporary file in the same folder, fsynced, renamed over
/// `path`, and the folder is fsynced: a crash leaves the old file or the new
/// one, never a mix.
///
/// # Errors
/// Those of [`prepare_checkpoint`] and [`PendingCheckpoint::commit`].
///
/// # Examples
/// ```
/// use gradlab_nn::*;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("model.safetensors");
/// let mut model = Linear::<f32>::new(&Scope::new(1).pp("fc"), 3, 2, LinearConfig::default())?;
/// let opt = Sgd::<f32>::new(SgdConfig::default())?;
/// save_checkpoint(&path, &model, Some(&opt), &CheckpointMeta::new("linear", 10))?;
/// let before = model.weight().value().clone();
/// let mut fresh = Linear::<f32>::new(&Scope::new(2).pp("fc"), 3, 2, LinearConfig::default())?;
/// let meta = load_checkpoint(&path, &mut fresh, None)?;
/// assert_eq!(meta.step, 10);
/// assert_eq!(fresh.weight().value(), &before);
/// # Ok::<(), gradlab_nn::NnError>(())
/// ```
pub fn save_checkpoint<T: Element>(
    path: impl AsRef<Path>,
    model: &dyn HasParams<T>,
    optimizer: Option<&dyn Optimizer<T>>,
    meta: &CheckpointMeta,
) -> Result<()> {
    prepare_checkpoint(path, model, optimizer, meta)?.commit()
}

fn corrupt(path: &Path, reason: impl Into<String>) -> NnError {
    NnError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parse_meta(path: &Path, bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(path, format!("not a valid safetensors file: {e}")))?;
    let map = header
        .metadata()
        .as_ref()
        .ok_or_else(|| corrupt(path, "no metadata header (not written by gradlab)"))?;
    if map.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
        return Err(corrupt(
            path,
            format!(
                "metadata format is {:?}, expected {CHECKPOINT_FORMAT:?}",
                map.get("format")
            ),
        ));
    }
    let json = map
        .get("gradlab")
        .ok_or_else(|| corrupt(path, "metadata has no \"gradlab\" entry"))?;
    serde_json::from_str(json).map_err(|e| corrupt(path, format!("bad gradlab metadata: {e}")))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(io("read", path))
}

/// Reads only the metadata of a checkpoint.
///
/// # Errors
/// [`NnError::Io`]; [`NnError::CorruptCheckpoint`] for a file that is not a
/// complete gradlab checkpoint.
pub fn read_checkpoint_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    parse_meta(path, &read_file(path)?)
}

/// Loads a checkpoint into `model` (and `optimizer`, whose state must be in
/// the file), returning its metadata. Strict: every parameter and buffer of
/// the model must be in the file with the model's shape and dtype, and the
/// file must hold no other model tensor. Nothing is modified unless
/// everything fits.
///
/// # Errors
/// [`NnError::Io`]; [`NnError::CorruptCheckpoint`] for a truncated or
/// corrupted file; [`NnError::MissingTensor`], [`NnError::ShapeMismatch`],
/// [`NnError::DtypeMismatch`] for the first parameter (in the model's order)
/// that does not fit; [`NnError::UnexpectedTensor`]; for the optimizer,
/// [`NnError::OptimizerMismatch`] and the same checks on its state.
pub fn load_checkpoint<T: Element>(
    path: impl AsRef<Path>,
    model: &mut dyn HasParams<T>,
    optimizer: Option<&mut dyn Optimizer<T>>,
) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let meta = parse_meta(path, &bytes)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(path, format!("not a valid safetensors file: {e}")))?;
    let want = dtype_of::<T>()?;

    let decode = |name: &str, expected: &[usize]| -> Result<Tensor<T>> {
        let view = st.tensor(name).map_err(|_| NnError::MissingTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
        })?;
        if view.dtype() != want {
            return Err(NnError::DtypeMismatch {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: T::DTYPE.to_string(),
                found: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != expected {
            return Err(NnError::ShapeMismatch {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        from_bytes(view.dtype(), view.shape(), view.data())
            .ok_or_else(|| corrupt(path, format!("tensor {name:?} has inconsistent data")))
    };

    // Model tensors, in the model's order.
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    model.visit_params(&mut |p| {
        if shapes
            .insert(p.name().to_string(), p.shape().to_vec())
            .is_none()
        {
            order.push(p.name().to_string());
        }
    });
    let mut staged: HashMap<String, Tensor<T>> = HashMap::new();
    for name in &order {
        let t = decode(name, &shapes[name])?;
        staged.insert(name.clone(), t);
    }
    let mut unexpected: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !n.starts_with(OPTIM_PREFIX) && !shapes.contains_key(*n))
        .collect();
    unexpected.sort_unstable();
    if let Some(name) = unexpected.first() {
        return Err(NnError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
        });
    }

    // Optimizer state.
    if let Some(opt) = optimizer {
        let om = meta
            .optimizer
            .as_ref()
            .ok_or_else(|| corrupt(path, "the checkpoint holds no optimizer state"))?;
        if om.kind != opt.kind() {
            return Err(NnError::OptimizerMismatch {
                expected: opt.kind().to_string(),
                found: om.kind.clone(),
            });
        }
        let mut names: Vec<&str> = st
            .names()
            .into_iter()
            .filter(|n| n.starts_with(OPTIM_PREFIX))
            .collect();
        names.sort_unstable();
        let mut tensors = Vec::with_capacity(names.len());
        for full in names {
            let key = &full[OPTIM_PREFIX.len()..];
            let param = key.split_once('/').map(|(_, p)| p).unwrap_or("");
            let Some(shape) = shapes.get(param) else {
                return Err(NnError::UnexpectedTensor {
                    path: path.to_path_buf(),
                    name: full.to_string(),
                });
            };
            tensors.push((key.to_string(), decode(full, shape)?));
        }
        opt.load_state(OptimizerState {
            kind: om.kind.clone(),
            steps: om.steps,
            lr: om.lr,
            tensors,
        })?;
    }

    // Everything fits: write.
    let mut result = Ok(());
    model.visit_params_mut(&mut |p| {
        if let Some(t) = staged.remove(p.name()) {
            if let Err(e) = p.set_value(t) {
                result = Err(e);
            }
        }
    });
    result?;
    Ok(meta)
}
