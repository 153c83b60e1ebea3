//! `--data SPEC`: from a spec string to a training and a held-out split.
//!
//! | name | keys |
//! |---|---|
//! | `digits` | `size` (8, 16 or 32: upscaled bilinearly) |
//! | `patterns` | `classes` (10), `size` (16), `channels` (1), `signal` (1.0, in [0, 1]), `jitter` (0.1), `n` (4000) |
//! | `noise` | `classes` (10), `size` (16), `channels` (1), `n` (2000) |
//! | `shuffled:SPEC` | `seed`: the training labels permuted (no learnable relation left) |
//! | `subset:SPEC` | `frac` (required, in (0, 1]), `seed`: a fraction of the training split |
//! | `idx:IMAGES,LABELS` | MNIST / Fashion-MNIST IDX files (gzip or plain) |
//! | `cifar:DIR` | a CIFAR-10 binary directory (data_batch_1..5.bin, test_batch.bin) |
//!
//! Every dataset except CIFAR-10 is split 80/20 into training and held-out
//! parts by seed (CIFAR-10 uses its test batch). Wrappers change the
//! training part only, so held-out accuracy is always measured against true
//! labels. Inputs are standardised per channel with statistics of the
//! training part.

use gradlab_data::{
    load_cifar10_dir, load_idx, train_val_split, ChannelStats, Dataset, Digits, DigitsConfig,
    Noise, NoiseConfig, Patterns, PatternsConfig, PixelScale, Resample, ShuffledLabels, Split,
    Standardized, Subset,
};

use crate::error::{CliError, Result};
use crate::spec::{unknown, Spec};

/// The data names `--data` accepts.
pub const DATA_NAMES: [&str; 7] = [
    "digits", "patterns", "noise", "shuffled", "subset", "idx", "cifar",
];

/// A training split and a held-out split, standardised with the training statistics.
pub struct DataSplits {
    /// The training examples.
    pub train: Box<dyn Dataset>,
    /// The held-out examples.
    pub val: Box<dyn Dataset>,
    /// The spec they came from.
    pub spec: String,
}

impl DataSplits {
    /// `[C, H, W]` of one example.
    pub fn input_shape(&self) -> [usize; 3] {
        self.train.input_shape()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.train.num_classes()
    }
}

type Pair = (Box<dyn Dataset>, Box<dyn Dataset>);

fn split(data: impl Dataset + 'static, seed: u64) -> Result<Pair> {
    let (train, val) = train_val_split(data, 0.2, seed)?;
    Ok((Box::new(train), Box::new(val)))
}

fn build_pair(spec: &mut Spec, seed: u64) -> Result<Pair> {
    let pair = match spec.name.as_str() {
        "digits" => {
            let side = spec.usize("size", 8)?;
            spec.finish()?;
            let images = gradlab_data::DIGITS_LEN as f64 * (side as f64).powi(2);
            crate::commands::summary::check_memory(&format!("'{}'", spec.text), images, 2.0)?;
            let digits = Digits::new(DigitsConfig {
                side,
                resample: Resample::Bilinear,
                scale: PixelScale::Unit,
            })
            .map_err(|e| CliError::Usage(format!("'{}': {e}", spec.text)))?;
            split(digits, seed)?
        }
        "patterns" => {
            let size = spec.usize("size", 16)?;
            let cfg = PatternsConfig {
                len: spec.usize("n", 4000)?,
                num_classes: spec.usize("classes", 10)?,
                channels: spec.usize("channels", 1)?,
                height: size,
                width: size,
                signal: spec.f64("signal", 1.0)?,
                jitter: spec.f64("jitter", PatternsConfig::default().jitter)?,
                seed,
            };
            spec.finish()?;
            let data =
                Patterns::new(cfg).map_err(|e| CliError::Usage(format!("'{}': {e}", spec.text)))?;
            split(data, seed)?
        }
        "noise" => {
            let size = spec.usize("size", 16)?;
            let cfg = NoiseConfig {
                len: spec.usize("n", 2000)?,
                num_classes: spec.usize("classes", 10)?,
                shape: [spec.usize("channels", 1)?, size, size],
                seed,
            };
            spec.finish()?;
            let data =
                Noise::new(cfg).map_err(|e| CliError::Usage(format!("'{}': {e}", spec.text)))?;
            split(data, seed)?
        }
        "shuffled" => {
            let s = spec.usize("seed", seed as usize)? as u64;
            let mut inner = spec.inner("shuffled:digits")?;
            spec.finish()?;
            let (train, val) = build_pair(&mut inner, seed)?;
            (
                Box::new(ShuffledLabels::new(train, s)) as Box<dyn Dataset>,
                val,
            )
        }
        "subset" => {
            let frac = spec.opt_f64("frac")?;
            let s = spec.usize("seed", seed as usize)? as u64;
            let mut inner = spec.inner("subset:digits,frac=0.1")?;
            spec.finish()?;
            let frac = frac.ok_or_else(|| {
                CliError::Usage(format!(
                    "'{}': subset needs frac=F with 0 < F <= 1",
                    spec.text
                ))
            })?;
            let (train, val) = build_pair(&mut inner, seed)?;
            let sub = Subset::fraction(train, frac, s)
                .map_err(|e| CliError::Usage(format!("'{}': {e}", spec.text)))?;
            (Box::new(sub) as Box<dyn Dataset>, val)
        }
        "idx" => {
            let files = spec.positionals();
            spec.finish()?;
            let [images, labels] = files.as_slice() else {
                return Err(CliError::Usage(format!(
                    "'{}': idx takes two files, idx:IMAGES,LABELS",
                    spec.text
                )));
            };
            split(load_idx(images, labels, 10)?, seed)?
        }
        "cifar" => {
            let dirs = spec.positionals();
            spec.finish()?;
            let [dir] = dirs.as_slice() else {
                return Err(CliError::Usage(format!(
                    "'{}': cifar takes one directory, cifar:DIR",
                    spec.text
                )));
            };
            (
                Box::new(load_cifar10_dir(dir, Split::Train)?) as Box<dyn Dataset>,
                Box::new(load_cifar10_dir(dir, Split::Test)?) as Box<dyn Dataset>,
            )
        }
        other => return Err(unknown("data", other, &DATA_NAMES).into()),
    };
    Ok(pair)
}

/// Builds the data `text`, split and standardised.
///
/// # Errors
/// [`CliError::Usage`] for an unknown name or key or a bad value; a run
/// error (exit code 1) for a missing or malformed file.
pub fn build_data(text: &str, seed: u64) -> Result<DataSplits> {
    let mut spec = Spec::parse(text)?;
    let (train, val) = build_pair(&mut spec, seed)?;
    if train.is_empty() || val.is_empty() {
        return Err(CliError::Usage(format!(
            "'{text}': the split leaves {} training and {} held-out examples; use more data",
            train.len(),
            val.len()
        )));
    }
    let stats = ChannelStats::compute(&train)?;
    Ok(DataSplits {
        train: Box::new(Standardized::new(train, stats.clone())?),
        val: Box::new(Standardized::new(val, stats)?),
        spec: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_build() {
        for text in [
            "digits",
            "digits:size=16",
            "patterns:classes=10,size=16,signal=0.5,n=400",
            "noise:classes=10,size=16,n=200",
            "shuffled:digits",
            "subset:digits,frac=0.1",
            "subset:patterns:size=8,n=300,frac=0.5",
        ] {
            let d = build_data(text, 0).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d.num_classes(), 10, "{text}");
        }
        let d = build_data("subset:digits,frac=0.1", 0).unwrap();
        assert_eq!(d.train.len(), 144, "10% of the 1438 training digits");
        assert_eq!(d.val.len(), 359, "the held-out part is untouched");
        assert_eq!(
            build_data("digits:size=16", 0).unwrap().input_shape(),
            [1, 16, 16]
        );
    }

    #[test]
    fn bad_data_specs_are_clear() {
        let e = build_data("digitz", 0).err().unwrap();
        assert!(
            e.to_string().contains("patterns") && e.exit_code() == 2,
            "{e}"
        );
        let e = build_data("patterns:signal=2", 0).err().unwrap();
        assert!(e.to_string().contains("signal"), "{e}");
        let e = build_data("subset:digits", 0).err().unwrap();
        assert!(e.to_string().contains("frac"), "{e}");
        let e = build_data("idx:/nonexistent/a,/nonexistent/b", 0)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("/nonexistent/a") && e.exit_code() == 1,
            "{e}"
        );
        assert!(build_data("noise:sizee=3", 0).is_err());
    }
}
