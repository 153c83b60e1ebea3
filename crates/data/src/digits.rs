//! [`Digits`]: the 1797 handwritten 8x8 digits compiled into the crate.
//!
//! Source: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten
//! Digits", UCI Machine Learning Repository (1998), doi:10.24432/C50P49,
//! licensed CC BY 4.0 (the copy distributed with scikit-learn). See
//! `assets/README.md` next to the file.

use std::io::Read;
use std::sync::OnceLock;

use flate2::read::GzDecoder;
use gradlab_tensor::Tensor;

use crate::dataset::{check_index, Dataset, Example};
use crate::error::{DataError, Result};

/// The embedded file: one line per image, 64 pixel values (0..=16, row-major)
/// then the label, comma-separated.
static DIGITS_CSV_GZ: &[u8] = include_bytes!("../assets/digits.csv.gz");

/// Number of images in the embedded set.
pub const DIGITS_LEN: usize = 1797;

/// Side of the original images.
const SIDE: usize = 8;

/// The parsed file: pixels (64 per image) and labels.
struct Parsed {
    pixels: Vec<[u8; SIDE * SIDE]>,
    labels: Vec<u8>,
}

/// Parses the embedded file once per process.
fn parsed() -> Result<&'static Parsed> {
    static PARSED: OnceLock<std::result::Result<Parsed, (usize, String)>> = OnceLock::new();
    PARSED
        .get_or_init(parse_embedded)
        .as_ref()
        .map_err(|(line, reason)| DataError::EmbeddedDigits {
            line: *line,
            reason: reason.clone(),
        })
}

fn parse_embedded() -> std::result::Result<Parsed, (usize, String)> {
    let mut text = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| (0, format!("cannot decompress: {e}")))?;
    let mut pixels = Vec::with_capacity(DIGITS_LEN);
    let mut labels = Vec::with_capacity(DIGITS_LEN);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut image = [0u8; SIDE * SIDE];
        let mut fields = line.split(',');
        for (j, px) in image.iter_mut().enumerate() {
            let field = fields
                .next()
                .ok_or_else(|| (line_no, format!("only {j} fields, expected 65")))?;
            *px = field
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&v| v <= 16)
                .ok_or_else(|| (line_no, format!("pixel {j} is {field:?}, expected 0..=16")))?;
        }
        let field = fields
            .next()
            .ok_or_else(|| (line_no, "missing label".to_string()))?;
        let label = field
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|&v| v < 10)
            .ok_or_else(|| (line_no, format!("label is {field:?}, expected 0..=9")))?;
        if fields.next().is_some() {
            return Err((line_no, "more than 65 fields".to_string()));
        }
        pixels.push(image);
        labels.push(label);
    }
    if labels.len() != DIGITS_LEN {
        return Err((
            labels.len(),
            format!("{} images, expected {DIGITS_LEN}", labels.len()),
        ));
    }
    Ok(Parsed { pixels, labels })
}

/// How to enlarge the 8x8 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// Each output pixel copies the input pixel it falls in (blocky; at 16
    /// and 32 every input pixel becomes a 2x2 or 4x4 block).
    #[default]
    Nearest,
    /// Bilinear interpolation with half-pixel centres, the convention of
    /// PyTorch's `interpolate(mode="bilinear", align_corners=False)`: output
    /// pixel `i` samples input coordinate `(i + 0.5) * 8 / side - 0.5`,
    /// clamped to the image. Values stay within the input range.
    Bilinear,
}

/// The range of the pixel values of [`Digits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelScale {
    /// The values of the file, integers 0..=16 (before any interpolation).
    Raw,
    /// Divided by 16, in `[0, 1]`.
    #[default]
    Unit,
}

/// Configuration of [`Digits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitsConfig {
    /// Side of the square images: 8 keeps the original; 16 or 32 suit deeper
    /// networks (any side from 8 to 256 is accepted).
    pub side: usize,
    /// How to enlarge when `side > 8`.
    pub resample: Resample,
    /// The value range.
    pub scale: PixelScale,
}

impl Default for DigitsConfig {
    /// The original 8x8 images, values in `[0, 1]`.
    fn default() -> Self {
        DigitsConfig {
            side: SIDE,
            resample: Resample::Nearest,
            scale: PixelScale::Unit,
        }
    }
}

/// The 1797 handwritten digits of the UCI "Optical Recognition of
/// Handwritten Digits" test set (as distributed with scikit-learn): 8x8
/// grey-level images with intensities 0..=16, 10 classes, about 180 images
/// per class. Compiled into the crate, so demos and tests need no download;
/// parsed once per process on first use.
///
/// Real, learnable signal: even a nearest-class-mean classifier reaches
/// about 90 % held-out accuracy (measured in `tests/signal.rs`), so small
/// networks train in seconds. Images are `[1, side, side]`.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Digits, DigitsConfig, Resample};
/// let digits = Digits::new(DigitsConfig { side: 32, resample: Resample::Bilinear, ..Default::default() })?;
/// assert_eq!(digits.len(), 1797);
/// assert_eq!(digits.input_shape(), [1, 32, 32]);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Digits {
    config: DigitsConfig,
    parsed: &'static Parsed,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parsed({} digits)", self.labels.len())
    }
}

impl Digits {
    /// The embedded digits at the configured size and scale.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for a side outside `8..=256`;
    /// [`DataError::EmbeddedDigits`] if the embedded file is damaged (a
    /// build from a corrupted copy).
    pub fn new(config: DigitsConfig) -> Result<Self> {
        if !(SIDE..=256).contains(&config.side) {
            return Err(DataError::InvalidArgument {
                what: "Digits::new",
                reason: format!("side must be in 8..=256, got {}", config.side),
            });
        }
        Ok(Digits {
            config,
            parsed: parsed()?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DigitsConfig {
        &self.config
    }

    /// The original 64 pixel values (0..=16, row-major) of image `index`.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] for `index >= 1797`.
    pub fn raw_pixels(&self, index: usize) -> Result<&'static [u8; 64]> {
        check_index(self, index)?;
        Ok(&self.parsed.pixels[index])
    }
}

/// Source coordinate and weight of the next pixel, per output pixel
/// (bilinear, half-pixel centres).
fn bilinear_taps(out: usize) -> Vec<(usize, usize, f32)> {
    let ratio = SIDE as f64 / out as f64;
    (0..out)
        .map(|i| {
            let src = ((i as f64 + 0.5) * ratio - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(SIDE - 1);
            let i1 = (i0 + 1).min(SIDE - 1);
            (i0, i1, (src - i0 as f64) as f32)
        })
        .collect()
}

impl Dataset for Digits {
    fn len(&self) -> usize {
        self.parsed.labels.len()
    }

    fn num_classes(&self) -> usize {
        10
    }

    fn input_shape(&self) -> [usize; 3] {
        [1, self.config.side, self.config.side]
    }

    fn get(&self, index: usize) -> Result<Example> {
        check_index(self, index)?;
        let raw = &self.parsed.pixels[index];
        let px = |y: usize, x: usize| f32::from(raw[y * SIDE + x]);
        let side = self.config.side;
        let mut data = Vec::with_capacity(side * side);
        if side == SIDE {
            data.extend(raw.iter().map(|&v| f32::from(v)));
        } else {
            match self.config.resample {
                Resample::Nearest => {
                    for y in 0..side {
                        for x in 0..side {
                            data.push(px(y * SIDE / side, x * SIDE / side));
                        }
                    }
                }
                Resample::Bilinear => {
                    let taps = bilinear_taps(side);
                    for &(y0, y1, wy) in &taps {
                        for &(x0, x1, wx) in &taps {
                            let top = px(y0, x0) * (1.0 - wx) + px(y0, x1) * wx;
                            let bottom = px(y1, x0) * (1.0 - wx) + px(y1, x1) * wx;
                            data.push(top * (1.0 - wy) + bottom * wy);
                        }
                    }
                }
            }
        }
        if self.config.scale == PixelScale::Unit {
            for v in &mut data {
                *v /= 16.0;
            }
        }
        Ok(Example {
            image: Tensor::from_vec(&[1, side, side], data)?,
            label: self.parsed.labels[index].into(),
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        Ok(self.parsed.labels[index].into())
    }

    fn name(&self) -> String {
        let side = self.config.side;
        match (side == SIDE, self.config.resample) {
            (true, _) => "digits(8x8)".to_string(),
            (false, Resample::Nearest) => format!("digits({side}x{side}, nearest)"),
            (false, Resample::Bilinear) => format!("digits({side}x{side}, bilinear)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_taps_stay_inside() {
        for out in [8, 16, 32, 13] {
            for (i0, i1, w) in bilinear_taps(out) {
                assert!(i0 < SIDE && i1 < SIDE && (0.0..=1.0).contains(&w));
            }
        }
        // 8 -> 8 is the identity.
        assert!(bilinear_taps(8)
            .iter()
            .enumerate()
            .all(|(i, &(i0, _, w))| i0 == i && w == 0.0));
    }
}
