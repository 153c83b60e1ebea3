//! Named parameters ([`Param`]) and the [`Scope`] that names them at
//! construction, hands out depth indices and derives initialisation seeds.

use std::fmt::{self, Display};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gradlab_tensor::{Element, Tensor};

use crate::error::{NnError, Result};
use crate::init::{Fans, Init};

/// What a [`Param`] is for. Buffers ([`Role::RunningMean`],
/// [`Role::RunningVar`], [`Role::Buffer`]) are state that is saved and
/// loaded but never trained; every other role is trainable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A weight matrix or convolution kernel.
    Weight,
    /// An additive bias.
    Bias,
    /// A normalisation layer's scale (PyTorch's BatchNorm `weight`).
    Gamma,
    /// A normalisation layer's shift (PyTorch's BatchNorm `bias`).
    Beta,
    /// BatchNorm's running mean (a buffer).
    RunningMean,
    /// BatchNorm's running variance (a buffer).
    RunningVar,
    /// Any other trainable tensor.
    Other,
    /// Any other buffer.
    Buffer,
}

impl Role {
    /// Whether the optimizer leaves this tensor alone (it is state, not a parameter).
    pub fn is_buffer(self) -> bool {
        matches!(self, Role::RunningMean | Role::RunningVar | Role::Buffer)
    }

    /// A lower-case name (`"weight"`, `"running_mean"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Weight => "weight",
            Role::Bias => "bias",
            Role::Gamma => "gamma",
            Role::Beta => "beta",
            Role::RunningMean => "running_mean",
            Role::RunningVar => "running_var",
            Role::Other => "other",
            Role::Buffer => "buffer",
        }
    }
}

impl Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named tensor of a model: a trainable parameter or a buffer.
///
/// Its full dotted name (`features.3.conv1.weight`) is fixed at construction
/// and is the key under which optimizers keep state, gradients are reported
/// ([`GradMap`](crate::GradMap)), checkpoints store it and diagnostics show
/// it. `depth` is the position of its layer from input (0) to output, so
/// gradient flow can be shown layer by layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Param<T: Element = f32> {
    name: String,
    value: Tensor<T>,
    role: Role,
    depth: usize,
}

impl<T: Element> Param<T> {
    /// A parameter with a full dotted name.
    ///
    /// # Errors
    /// [`NnError::InvalidName`] unless `name` is dot-separated non-empty
    /// segments of ASCII letters, digits, `_` and `-`.
    pub fn new(
        name: impl Into<String>,
        role: Role,
        depth: usize,
        value: Tensor<T>,
    ) -> Result<Self> {
        let name = name.into();
        validate_name(&name)?;
        Ok(Param {
            name,
            value,
            role,
            depth,
        })
    }

    /// The full dotted name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The elements, mutable (the shape cannot change through this).
    pub fn data_mut(&mut self) -> &mut [T] {
        self.value.as_slice_mut()
    }

    /// Replaces the value by one of the same shape.
    ///
    /// # Errors
    /// [`NnError::ShapeMismatch`] (with an empty path) when the shapes differ.
    pub fn set_value(&mut self, value: Tensor<T>) -> Result<()> {
        if value.shape() != self.value.shape() {
            return Err(NnError::ShapeMismatch {
                path: Default::default(),
                name: self.name.clone(),
                expected: self.value.shape().to_vec(),
                found: value.shape().to_vec(),
            });
        }
        self.value = value;
        Ok(())
    }

    /// What the tensor is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Position of its layer from input (0) to output.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether an optimizer updates it (not a buffer).
    pub fn is_trainable(&self) -> bool {
        !self.role.is_buffer()
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// Checks a dotted name: non-empty segments of `[A-Za-z0-9_-]` separated by dots.
///
/// # Errors
/// [`NnError::InvalidName`] saying which segment is wrong.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: String| NnError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("a name cannot be empty".into()));
    }
    for (i, seg) in name.split('.').enumerate() {
        if seg.is_empty() {
            return Err(bad(format!(
                "segment {i} is empty (leading, trailing or doubled dot)"
            )));
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(bad(format!(
                "segment {seg:?} contains {c:?}; use ASCII letters, digits, '_' or '-'"
            )));
        }
    }
    Ok(())
}

/// Names, depth indices and seeds for the parameters of a model under
/// construction, like candle's `VarBuilder::pp`.
///
/// A scope has a dotted prefix; [`pp`](Scope::pp) makes a child scope one
/// segment deeper. All scopes derived from one [`Scope::new`] share a depth
/// counter: each parameterised layer takes the next index when it is built,
/// so building layers in input-to-output order numbers them that way. The
/// initialisation seed of a parameter is derived from the root seed and the
/// parameter's full name, so it does not depend on construction order.
///
/// # Examples
/// ```
/// use gradlab_nn::Scope;
/// let root = Scope::new(42);
/// let conv = root.pp("features").pp(0);
/// assert_eq!(conv.prefix(), "features.0");
/// assert_eq!(conv.name("weight"), "features.0.weight");
/// assert_eq!(conv.next_depth(), 0);
/// assert_eq!(root.pp("head").next_depth(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Scope {
    prefix: String,
    seed: u64,
    depth: Arc<AtomicUsize>,
}

impl Scope {
    /// A root scope (empty prefix) whose parameters are initialised from `seed`.
    pub fn new(seed: u64) -> Self {
        Scope {
            prefix: String::new(),
            seed,
            depth: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A child scope: `prefix.name` (or `name` at the root). The name is
    /// checked when a parameter is created under it.
    pub fn pp(&self, name: impl Display) -> Scope {
        Scope {
            prefix: self.name(&name.to_string()),
            seed: self.seed,
            depth: Arc::clone(&self.depth),
        }
    }

    /// The dotted prefix of this scope (the module's name); empty at the root.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of `leaf` in this scope.
    pub fn name(&self, leaf: &str) -> String {
        if self.prefix.is_empty() {
            leaf.to_string()
        } else {
            format!("{}.{leaf}", self.prefix)
        }
    }

    /// The root seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Takes the next depth index (one per parameterised layer).
    pub fn next_depth(&self) -> usize {
        self.depth.fetch_add(1, Ordering::Relaxed)
    }

    /// The depth index the next layer will take.
    pub fn peek_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// The initialisation seed of the parameter with full name `name`:
    /// a hash of the root seed and the name.
    pub fn seed_for(&self, name: &str) -> u64 {
        mix_seed(self.seed, fnv1a(name.as_bytes()))
    }

    /// A parameter `leaf` of this scope, initialised by `init` (seeded by
    /// [`seed_for`](Scope::seed_for) its full name) with the fans `fans`.
    ///
    /// # Errors
    /// [`NnError::InvalidName`] for a bad name; [`NnError::InvalidConfig`]
    /// for an initialisation that cannot be sampled (a negative std...).
    pub fn param<T: Element>(
        &self,
        leaf: &str,
        role: Role,
        depth: usize,
        shape: &[usize],
        init: &Init,
        fans: Fans,
    ) -> Result<Param<T>> {
        let name = self.name(leaf);
        validate_name(&name)?;
        let value = init.sample(shape, fans, self.seed_for(&name))?;
        Param::new(name, role, depth, value)
    }
}

/// FNV-1a, 64 bits: a stable hash of a name (no dependence on std's hasher).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Combines two seeds with the SplitMix64 finaliser.
pub(crate) fn mix_seed(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
