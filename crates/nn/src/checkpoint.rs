//! Crash-safe checkpoints in the safetensors format.
//!
//! # Format
//! One safetensors file holding
//! - every parameter and buffer of the model under its dotted name
//!   (`features.0.weight`, `features.1.running_mean`), row-major,
//!   little-endian, dtype `F32` or `F64` as the model's element type;
//! - the optimizer state, if saved, under `optim/<slot>/<parameter name>`
//!   (`optim/momentum_buffer/features.0.weight`, `optim/exp_avg/...`);
//! - the safetensors metadata header with `format = "gradlab-checkpoint"`,
//!   `gradlab` = the JSON of [`CheckpointMeta`] (architecture name, model
//!   specification, gradlab version, dtype, training step counter, optimizer
//!   kind, step count and learning rate, free-form `extra` JSON) and
//!   `crc32` = the CRC-32 (IEEE, as zlib and gzip) of every byte after the
//!   header, that is all tensor data, as 8 lowercase hex digits.
//!
//! The same model, optimizer and metadata always give the same bytes: the
//! header keys are written in sorted order (safetensors would write its
//! metadata map in hash order, which changes from one save to the next).
//!
//! # What is never saved
//! A parameter, buffer (BatchNorm running statistics) or optimizer tensor
//! holding NaN or infinity: [`save_checkpoint`] refuses with
//! [`NnError::NonFiniteTensor`] before writing anything, so the last good
//! checkpoint stays the one on disk.
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
//! verifies the checksum (a file written without one, by another tool or an
//! older gradlab, loads, and the returned [`CheckpointMeta::checksum`] says
//! [`DataChecksum::Absent`]), then checks every name, shape and dtype against
//! the model (and the optimizer), reporting the first mismatch in the
//! model's order, together with the model the checkpoint was saved from when
//! its metadata names it ([`NnError::ModelMismatch`]); only when everything
//! fits does it write anything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

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

/// The metadata key of the checksum of the tensor data.
const CRC_KEY: &str = "crc32";

/// Whether the tensor data of a checkpoint was verified when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataChecksum {
    /// Not verified: metadata built in memory, or read by
    /// [`read_checkpoint_meta`], which does not look at the data.
    #[default]
    NotChecked,
    /// The data matched the checksum stored in the file.
    Verified,
    /// The file holds no checksum (written by another tool or an older
    /// gradlab): the data could not be verified.
    Absent,
}

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
    /// The full specification of the model (`"resnet:depth=14"`), when the
    /// caller gives one: a checkpoint that does not fit a model then says
    /// which model it was saved from ([`NnError::ModelMismatch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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
    /// Whether the tensor data was verified against the file's checksum
    /// (set when reading; not stored in the file).
    #[serde(skip)]
    pub checksum: DataChecksum,
}

impl CheckpointMeta {
    /// Metadata for `architecture` at training step `step`.
    pub fn new(architecture: impl Into<String>, step: u64) -> Self {
        CheckpointMeta {
            architecture: architecture.into(),
            model: None,
            step,
            gradlab_version: env!("CARGO_PKG_VERSION").into(),
            dtype: String::new(),
            optimizer: None,
            extra: serde_json::Value::Null,
            checksum: DataChecksum::NotChecked,
        }
    }

    /// The same, with the model's specification (see
    /// [`model`](CheckpointMeta::model)).
    pub fn with_model(mut self, spec: impl Into<String>) -> Self {
        self.model = Some(spec.into());
        self
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

/// The tensor `name` as bytes; an error naming it (and `path`) when it
/// holds NaN or infinity, which a checkpoint never stores.
fn to_raw<T: Element>(name: &str, t: &Tensor<T>, path: &Path) -> Result<Raw> {
    let dtype = dtype_of::<T>()?;
    let s = t.as_slice();
    if let Some((index, v)) = s.iter().enumerate().find(|(_, v)| !v.as_f64().is_finite()) {
        return Err(NnError::NonFiniteTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            index,
            value: v.as_f64(),
        });
    }
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
/// The same inputs always give the same bytes.
///
/// # Errors
/// [`NnError::DuplicateName`] when two tensors share a name;
/// [`NnError::NonFiniteTensor`] (with an empty path) when a parameter,
/// buffer or optimizer tensor holds NaN or infinity;
/// [`NnError::CorruptCheckpoint`] if serialisation fails.
pub fn checkpoint_bytes<T: Element>(
    model: &dyn HasParams<T>,
    optimizer: Option<&dyn Optimizer<T>>,
    meta: &CheckpointMeta,
) -> Result<Vec<u8>> {
    encode(model, optimizer, meta, Path::new(""))
}

/// [`checkpoint_bytes`], errors naming `path`.
fn encode<T: Element>(
    model: &dyn HasParams<T>,
    optimizer: Option<&dyn Optimizer<T>>,
    meta: &CheckpointMeta,
    path: &Path,
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
        match to_raw(p.name(), p.value(), path) {
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
                let full = format!("{OPTIM_PREFIX}{name}");
                let raw = to_raw(&full, t, path)?;
                raws.push((full, raw));
            }
            Some(OptimizerMeta {
                kind: state.kind,
                steps: state.steps,
                lr: state.lr,
            })
        }
        None => None,
    };
    meta.checksum = DataChecksum::NotChecked;
    let encoding = |reason: String| NnError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let json = serde_json::to_string(&meta)
        .map_err(|e| encoding(format!("cannot encode metadata: {e}")))?;
    // Tensors without metadata: safetensors orders them (by dtype, then
    // name) deterministically, and the data region it writes is final.
    let plain = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), None)
        .map_err(|e| encoding(format!("cannot serialise: {e}")))?;
    let n = header_len(&plain).ok_or_else(|| encoding("bad safetensors header".into()))?;
    let data = &plain[8 + n..];
    let header = BTreeMap::from([
        ("format", CHECKPOINT_FORMAT.to_string()),
        ("gradlab", json),
        (CRC_KEY, format!("{:08x}", crc32fast::hash(data))),
    ]);
    with_metadata(&plain[8..8 + n], &header, data)
        .ok_or_else(|| encoding("cannot insert the metadata header".into()))
}

/// The header length a safetensors file declares in its first 8 bytes, if
/// the file is long enough to hold it.
fn header_len(bytes: &[u8]) -> Option<usize> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let n = usize::try_from(n).ok()?;
    (bytes.len() >= 8usize.checked_add(n)?).then_some(n)
}

/// A safetensors file from a metadata-less `header` (the JSON object of the
/// tensors, space-padded), `metadata` (written in key order, so the bytes
/// are reproducible) and the data region.
fn with_metadata(header: &[u8], metadata: &BTreeMap<&str, String>, data: &[u8]) -> Option<Vec<u8>> {
    let tensors = std::str::from_utf8(header).ok()?.trim_end();
    let rest = tensors.strip_prefix('{')?;
    let meta_json = serde_json::to_string(metadata).ok()?;
    let mut json = format!("{{\"__metadata__\":{meta_json}");
    if rest != "}" {
        json.push(',');
    }
    json.push_str(rest);
    // safetensors aligns the data to 8 bytes by padding the header with
    // spaces.
    let padded = json.len().next_multiple_of(8);
    let mut out = Vec::with_capacity(8 + padded + data.len());
    out.extend_from_slice(&(padded as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.resize(8 + padded, b' ');
    out.extend_from_slice(data);
    Some(out)
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
    let bytes = encode(model, optimizer, meta, path.as_ref())?;
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

/// The metadata of a checkpoint file, and the checksum it declares (`None`
/// when it has none, as in files written by other tools).
fn parse_meta(path: &Path, bytes: &[u8]) -> Result<(CheckpointMeta, Option<u32>)> {
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
    let mut meta: CheckpointMeta = serde_json::from_str(json)
        .map_err(|e| corrupt(path, format!("bad gradlab metadata: {e}")))?;
    let crc = match map.get(CRC_KEY) {
        None => None,
        Some(hex) => Some(
            u32::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.len() == 8)
                .ok_or_else(|| corrupt(path, format!("bad {CRC_KEY} entry {hex:?}")))?,
        ),
    };
    meta.checksum = match crc {
        Some(_) => DataChecksum::NotChecked,
        None => DataChecksum::Absent,
    };
    Ok((meta, crc))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(io("read", path))
}

/// Reads only the metadata of a checkpoint. The data is not verified:
/// [`CheckpointMeta::checksum`] is [`DataChecksum::NotChecked`], or
/// [`DataChecksum::Absent`] for a file without a checksum.
///
/// # Errors
/// [`NnError::Io`]; [`NnError::CorruptCheckpoint`] for a file that is not a
/// complete gradlab checkpoint.
pub fn read_checkpoint_meta(path: impl AsRef<Path>) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    Ok(parse_meta(path, &read_file(path)?)?.0)
}

/// Loads a checkpoint into `model` (and `optimizer`, whose state must be in
/// the file), returning its metadata. Strict: every parameter and buffer of
/// the model must be in the file with the model's shape and dtype, and the
/// file must hold no other model tensor. Nothing is modified unless
/// everything fits.
///
/// # Errors
/// [`NnError::Io`]; [`NnError::CorruptCheckpoint`] for a truncated or
/// corrupted file; [`NnError::ChecksumMismatch`] when the tensor data does
/// not match the file's checksum; [`NnError::MissingTensor`],
/// [`NnError::ShapeMismatch`], [`NnError::DtypeMismatch`] for the first
/// parameter (in the model's order) that does not fit;
/// [`NnError::UnexpectedTensor`]; any of these four wrapped in
/// [`NnError::ModelMismatch`] when the file names the model it was saved
/// from; for the optimizer, [`NnError::OptimizerMismatch`] and the same
/// checks on its state.
pub fn load_checkpoint<T: Element>(
    path: impl AsRef<Path>,
    model: &mut dyn HasParams<T>,
    optimizer: Option<&mut dyn Optimizer<T>>,
) -> Result<CheckpointMeta> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let (mut meta, crc) = parse_meta(path, &bytes)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(path, format!("not a valid safetensors file: {e}")))?;
    if let Some(expected) = crc {
        // deserialize checked the header length and that the tensors cover
        // the data region exactly.
        let n = header_len(&bytes).ok_or_else(|| corrupt(path, "bad header length"))?;
        let found = crc32fast::hash(&bytes[8 + n..]);
        if found != expected {
            return Err(NnError::ChecksumMismatch {
                path: path.to_path_buf(),
                expected,
                found,
            });
        }
        meta.checksum = DataChecksum::Verified;
    }
    let want = dtype_of::<T>()?;
    // With the model's specification in the file, a tensor that does not
    // fit says which model the checkpoint is for.
    let with_model = |e: NnError| -> NnError {
        let Some(spec) = &meta.model else {
            return e;
        };
        let tensor = match &e {
            NnError::MissingTensor { name, .. }
            | NnError::UnexpectedTensor { name, .. }
            | NnError::ShapeMismatch { name, .. }
            | NnError::DtypeMismatch { name, .. } => name.clone(),
            _ => return e,
        };
        NnError::ModelMismatch {
            path: path.to_path_buf(),
            checkpoint_model: spec.clone(),
            tensor,
            mismatch: Box::new(e),
        }
    };

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
        let t = decode(name, &shapes[name]).map_err(with_model)?;
        staged.insert(name.clone(), t);
    }
    let mut unexpected: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !n.starts_with(OPTIM_PREFIX) && !shapes.contains_key(*n))
        .collect();
    unexpected.sort_unstable();
    if let Some(name) = unexpected.first() {
        return Err(with_model(NnError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
        }));
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
