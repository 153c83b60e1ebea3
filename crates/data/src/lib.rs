//! # gradlab-data
//!
//! Datasets for gradlab's diagnostics, whose learnable signal is known by
//! construction, and strict readers for the real files users have.
//!
//! - [`Dataset`]: an object-safe, `Send + Sync` trait (length, one
//!   [`Example`] as a `[C, H, W]` image tensor plus a label, number of
//!   classes, input shape), implemented for `&D`, `Box<D>` and `Arc<D>`, so
//!   `Box<dyn Dataset>` works everywhere.
//! - Batching: [`Batches`] yields [`Batch`]es of `[N, C, H, W]` images and
//!   label vectors with a per-epoch seeded order ([`BatchConfig`]:
//!   batch size, shuffle, drop-last); [`train_val_split`] by seed;
//!   per-channel standardisation ([`ChannelStats`] computed on the training
//!   split, applied by [`Standardized`] to any split).
//! - Data with a known amount of signal: [`Patterns`] (synthetic oriented
//!   bars mixed with Gaussian noise by a `signal` knob in `[0, 1]`; at 0
//!   images are independent of labels), [`Digits`] (the 1797 8x8
//!   handwritten digits compiled into the crate, optionally upscaled).
//! - No-signal controls: [`Noise`] (Gaussian inputs, random labels),
//!   [`ShuffledLabels`] (a seeded permutation of any dataset's labels),
//!   [`CorruptedLabels`] (each label random with a probability), and
//!   [`Subset`] (a fraction of any dataset, for overfitting studies).
//! - Readers: MNIST/Fashion-MNIST IDX files ([`load_mnist`],
//!   [`load_mnist_dir`]) and CIFAR-10 binary batches ([`load_cifar10_dir`]),
//!   gzip or plain, validated completely ([`readers`]).
//!
//! Every seeded draw is a ChaCha8 stream from
//! [`gradlab_tensor::seeded_rng`], and synthetic examples are generated from
//! `(seed, index)` on demand: the same seed gives the same data on every
//! machine, and a million examples cost no memory. Every error is a
//! [`DataError`] carrying the paths and values involved; nothing panics on
//! bad input or bad files. Sizes are checked against the machine's memory
//! ([`memory_limit`]) before anything is allocated: an impossible size is
//! [`DataError::TooMuchMemory`], never an abort.
//!
//! Layout: one file per dataset or wrapper — `dataset.rs` (the trait),
//! `memory.rs` (in-memory datasets), `batch.rs`, `subset.rs` (subsets and
//! splits), `standardize.rs`, `labels.rs` (label controls), `noise.rs`,
//! `patterns.rs`, `digits.rs` (with `assets/digits.csv.gz` and its
//! attribution in `assets/README.md`), `rng.rs` (seeded streams), `budget.rs` (memory limits); file
//! readers live in `readers/` (`idx.rs`, `cifar.rs`, shared file handling in
//! `mod.rs`).
//!
//! ```
//! use gradlab_data::{BatchConfig, Batches, Dataset, Patterns, PatternsConfig};
//! let data = Patterns::new(PatternsConfig { len: 100, signal: 0.3, ..Default::default() })?;
//! let config = BatchConfig { batch_size: 32, drop_last: true, ..Default::default() };
//! for batch in Batches::new(&data, &config, 0)? {
//!     let batch = batch?;
//!     assert_eq!(batch.images.shape(), &[32, 1, 16, 16]);
//! }
//! # Ok::<(), gradlab_data::DataError>(())
//! ```

mod batch;
mod budget;
mod dataset;
mod digits;
mod error;
mod labels;
mod memory;
mod noise;
mod patterns;
pub mod readers;
mod rng;
mod standardize;
mod subset;

pub use batch::{epoch_order, Batch, BatchConfig, Batches};
pub use budget::{memory_limit, FALLBACK_MEMORY_LIMIT};
pub use dataset::{Dataset, Example};
pub use digits::{Digits, DigitsConfig, PixelScale, Resample, DIGITS_LEN};
pub use error::{DataError, Result};
pub use labels::{CorruptedLabels, ShuffledLabels};
pub use memory::{ByteImages, TensorDataset};
pub use noise::{Noise, NoiseConfig};
pub use patterns::{Patterns, PatternsConfig};
pub use readers::cifar::{decode_cifar10_batch, load_cifar10_dir, read_cifar10_batch};
pub use readers::idx::{
    decode_idx_images, decode_idx_labels, idx_dataset, load_idx, load_mnist, load_mnist_dir,
    read_idx_images, read_idx_labels, IdxImages,
};
pub use readers::{Split, MAX_FILE_BYTES};
pub use standardize::{ChannelStats, Standardized};
pub use subset::{train_val_split, SplitPart, Subset};
