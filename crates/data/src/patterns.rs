//! [`Patterns`]: synthetic images whose learnable signal is set by one knob.

use gradlab_tensor::Tensor;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::budget::{bytes_of, check_synthetic};
use crate::dataset::{check_index, image_numel, Dataset, Example};
use crate::error::{check_classes, check_positive, check_unit_interval, DataError, Result};
use crate::rng::{domain, sin_cos, stream_rng, unit};

/// Configuration of a [`Patterns`] dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternsConfig {
    /// Number of examples.
    pub len: usize,
    /// Number of classes `K` (at least 2).
    pub num_classes: usize,
    /// Channels `C` (at least 1).
    pub channels: usize,
    /// Image height `H` (at least 4).
    pub height: usize,
    /// Image width `W` (at least 4).
    pub width: usize,
    /// Fraction of each image's energy that comes from the class pattern, in
    /// `[0, 1]`: 1 = clean patterns, 0 = pure noise independent of the label.
    pub signal: f64,
    /// Amount of random variation of the pattern within a class, in
    /// `[0, 0.2]`: shifts up to `jitter * side` pixels along each axis,
    /// rotations up to `jitter * 45` degrees, bar length and thickness scaled
    /// by a factor in `[1 - 2 jitter, 1 + 2 jitter]`. Shifts make the task
    /// harder for template matching (a nearest-class-mean classifier) than
    /// for a convolutional network.
    pub jitter: f64,
    /// Seed of the per-example variation and noise. The classes themselves do
    /// not depend on it.
    pub seed: u64,
}

impl Default for PatternsConfig {
    /// 10,000 clean examples, 10 classes, `[1, 16, 16]`, jitter 0.1, seed 0.
    fn default() -> Self {
        PatternsConfig {
            len: 10_000,
            num_classes: 10,
            channels: 1,
            height: 16,
            width: 16,
            signal: 1.0,
            jitter: 0.1,
            seed: 0,
        }
    }
}

/// One class's pattern: an oriented bar at a class-specific place, with
/// class-specific channel gains.
#[derive(Debug, Clone)]
struct ClassPattern {
    /// Centre, as a fraction of the height and width.
    centre: (f64, f64),
    /// Orientation in radians, in `[0, pi)`.
    angle: f64,
    /// Gain of each channel.
    gains: Vec<f64>,
}

/// `(1 - t^2)^2` on `|t| < 1`, 0 outside: a smooth bump made of basic
/// arithmetic only, so images are bit-identical on every platform.
fn bump(t: f64) -> f64 {
    let u = 1.0 - t * t;
    if u > 0.0 {
        u * u
    } else {
        0.0
    }
}

/// Synthetic images with a known amount of learnable signal.
///
/// Class `k` of `K` is an oriented bar (a smooth elongated bump, 60 % of the
/// shorter side long) at orientation `180 k / K` degrees, with its own centre
/// and, for `C > 1`, its own colour (channel gains in `[0.2, 1]`). Centres
/// follow a low-discrepancy sequence over the middle half of the image, so
/// any number of classes gets spread-out, distinct patterns. Classes depend
/// only on `(k, K, C, H, W)`, never on the seed, so two datasets with
/// different seeds pose the same task. Each example shifts, rotates and rescales its class's bar at random
/// (see [`PatternsConfig::jitter`]); the clean pattern `p` is then
/// normalised to zero mean and unit root-mean-square over its `C*H*W`
/// values, and mixed with standard Gaussian noise `e`:
///
/// `x = sqrt(signal) * p + sqrt(1 - signal) * e`
///
/// so every pixel has about unit variance whatever the signal, `signal` is
/// the fraction of the energy that carries the class, and the
/// signal-to-noise ratio is `signal / (1 - signal)`. At `signal = 0` the
/// image is exactly `e`, drawn from a random stream that does not depend on
/// the label: inputs and labels are independent and nothing can be learned.
/// At `signal = 1` there is no noise.
///
/// Labels are balanced: example `i` has label `i % K`. Example `i` is
/// generated from `(seed, i)` when it is asked for; nothing is stored.
///
/// # Examples
/// ```
/// use gradlab_data::{Dataset, Patterns, PatternsConfig};
/// let data = Patterns::new(PatternsConfig { signal: 0.5, channels: 3, ..Default::default() })?;
/// let ex = data.get(12)?;
/// assert_eq!(ex.image.shape(), &[3, 16, 16]);
/// assert_eq!(ex.label, 2);
/// # Ok::<(), gradlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Patterns {
    config: PatternsConfig,
    numel: usize,
}

impl Patterns {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for fewer than 2 classes, zero
    /// channels, a side below 4, `signal` outside `[0, 1]` or `jitter`
    /// outside `[0, 0.2]`; [`DataError::TooMuchMemory`] when one image, the
    /// order of an epoch or one score per class would not fit in memory.
    pub fn new(config: PatternsConfig) -> Result<Self> {
        const WHAT: &str = "Patterns::new";
        check_classes(WHAT, config.num_classes)?;
        check_positive(WHAT, "channels", config.channels)?;
        if config.height < 4 || config.width < 4 {
            return Err(DataError::InvalidArgument {
                what: WHAT,
                reason: format!(
                    "images must be at least 4x4, got {}x{}",
                    config.height, config.width
                ),
            });
        }
        check_unit_interval(WHAT, "signal", config.signal)?;
        if !(config.jitter.is_finite() && (0.0..=0.2).contains(&config.jitter)) {
            return Err(DataError::InvalidArgument {
                what: WHAT,
                reason: format!("jitter must be in [0, 0.2], got {}", config.jitter),
            });
        }
        let shape = [config.channels, config.height, config.width];
        // Building an image takes its f64 pattern (8 bytes a value), one f64
        // plane (8 bytes a pixel) and the f32 result (4 bytes a value).
        let [c, h, w] = shape;
        let example = bytes_of(&[c, h, w, 12]).saturating_add(bytes_of(&[h, w, 8]));
        check_synthetic(WHAT, config.len, config.num_classes, shape, example)?;
        let numel = image_numel(WHAT, shape)?;
        Ok(Patterns { config, numel })
    }

    /// The configuration.
    pub fn config(&self) -> &PatternsConfig {
        &self.config
    }

    /// The clean, unjittered pattern of `class`, normalised to zero mean and
    /// unit RMS, shape `[C, H, W]` (what the class looks like at
    /// `signal = 1, jitter = 0`).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] for a class `>= num_classes`.
    pub fn prototype(&self, class: usize) -> Result<Tensor<f32>> {
        if class >= self.config.num_classes {
            return Err(DataError::InvalidArgument {
                what: "Patterns::prototype",
                reason: format!(
                    "class {class} is out of range for {} classes",
                    self.config.num_classes
                ),
            });
        }
        let pattern = self.render(class, (0.0, 0.0), 0.0, 1.0);
        let data = pattern.iter().map(|&v| v as f32).collect();
        Ok(Tensor::from_vec(&self.shape(), data)?)
    }

    fn shape(&self) -> [usize; 3] {
        [self.config.channels, self.config.height, self.config.width]
    }

    /// The layout of class `k`, computed on demand (so the class count costs
    /// no memory). Centres: the R2 low-discrepancy sequence (plastic number)
    /// over the middle half of the image; orientations: evenly spaced over
    /// 180 degrees; colours: channel gains from the golden-ratio sequence.
    fn class_pattern(&self, k: usize) -> ClassPattern {
        let PatternsConfig {
            num_classes,
            channels,
            ..
        } = self.config;
        let plastic = 1.324_717_957_244_746_f64;
        let (a1, a2) = (1.0 / plastic, 1.0 / (plastic * plastic));
        let golden = 0.618_033_988_749_894_9_f64;
        let frac = |x: f64| x - x.floor();
        let angle = std::f64::consts::PI * k as f64 / num_classes as f64;
        let k = k as f64;
        let centre = (
            0.25 + 0.5 * frac(0.5 + k * a1),
            0.25 + 0.5 * frac(0.5 + k * a2),
        );
        let gains = (0..channels)
            .map(|c| {
                if channels == 1 {
                    1.0
                } else {
                    let phase = c as f64 / channels as f64 + k * golden;
                    let (_, cos) = sin_cos(2.0 * std::f64::consts::PI * frac(phase));
                    0.6 + 0.4 * cos
                }
            })
            .collect();
        ClassPattern {
            centre,
            angle,
            gains,
        }
    }

    /// Draws the jitter of one example: shift in pixels, rotation, scale.
    fn draw_jitter(&self, rng: &mut ChaCha8Rng) -> ((f64, f64), f64, f64) {
        let j = self.config.jitter;
        let side = self.config.height.min(self.config.width) as f64;
        let mut sym = || 2.0 * unit(rng) - 1.0;
        let shift = (j * side * sym(), j * side * sym());
        let rotation = j * std::f64::consts::FRAC_PI_4 * sym();
        let scale = 1.0 + 2.0 * j * sym();
        (shift, rotation, scale)
    }

    /// The normalised clean pattern of `class` with the given jitter.
    fn render(&self, class: usize, shift: (f64, f64), rotation: f64, scale: f64) -> Vec<f64> {
        let PatternsConfig {
            channels,
            height,
            width,
            ..
        } = self.config;
        let pattern = self.class_pattern(class);
        let side = height.min(width) as f64;
        let half_length = 0.3 * side * scale;
        let half_width = (0.12 * side).max(0.9) * scale;
        let cy = pattern.centre.0 * height as f64 + shift.0;
        let cx = pattern.centre.1 * width as f64 + shift.1;
        let (sin, cos) = sin_cos(pattern.angle + rotation);
        let mut plane = Vec::with_capacity(height * width);
        for y in 0..height {
            let dy = y as f64 + 0.5 - cy;
            for x in 0..width {
                let dx = x as f64 + 0.5 - cx;
                let along = dx * cos + dy * sin;
                let across = dy * cos - dx * sin;
                plane.push(bump(along / half_length) * bump(across / half_width));
            }
        }
        let mut values: Vec<f64> = pattern
            .gains
            .iter()
            .flat_map(|&g| plane.iter().map(move |&v| g * v))
            .collect();
        debug_assert_eq!(values.len(), channels * height * width);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let rms = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        let inv = if rms > 1e-12 { 1.0 / rms } else { 0.0 };
        for v in &mut values {
            *v = (*v - mean) * inv;
        }
        values
    }
}

impl Dataset for Patterns {
    fn len(&self) -> usize {
        self.config.len
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn input_shape(&self) -> [usize; 3] {
        self.shape()
    }

    fn get(&self, index: usize) -> Result<Example> {
        let label = self.label(index)?;
        let s = self.config.signal;
        let stream = index as u64;
        let data: Vec<f32> = if s == 0.0 {
            // Exactly the noise: nothing about the label enters the image.
            let mut noise = stream_rng(self.config.seed, domain::PATTERN_NOISE, stream);
            (0..self.numel)
                .map(|_| {
                    let e: f64 = StandardNormal.sample(&mut noise);
                    e as f32
                })
                .collect()
        } else {
            let mut jitter = stream_rng(self.config.seed, domain::PATTERN_JITTER, stream);
            let (shift, rotation, scale) = self.draw_jitter(&mut jitter);
            let pattern = self.render(label, shift, rotation, scale);
            if s == 1.0 {
                pattern.iter().map(|&p| p as f32).collect()
            } else {
                let mut noise = stream_rng(self.config.seed, domain::PATTERN_NOISE, stream);
                let (a, b) = (s.sqrt(), (1.0 - s).sqrt());
                pattern
                    .iter()
                    .map(|&p| {
                        let e: f64 = StandardNormal.sample(&mut noise);
                        (a * p + b * e) as f32
                    })
                    .collect()
            }
        };
        Ok(Example {
            image: Tensor::from_vec(&self.shape(), data)?,
            label,
        })
    }

    fn label(&self, index: usize) -> Result<usize> {
        check_index(self, index)?;
        Ok(index % self.config.num_classes)
    }

    fn name(&self) -> String {
        let c = &self.config;
        format!(
            "patterns(n={}, k={}, {}x{}x{}, signal={}, jitter={}, seed={})",
            c.len, c.num_classes, c.channels, c.height, c.width, c.signal, c.jitter, c.seed
        )
    }
}
