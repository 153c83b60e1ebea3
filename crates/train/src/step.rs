//! The training step, written once: forward (auxiliary heads included),
//! combined loss, backward (with tap gradients when asked), the non-finite
//! guard, and the optimizer update; and its data-parallel form
//! ([`Trainer::step_parallel`]), which all-reduces the gradients between
//! backward and update.

use std::time::Instant;

use gradlab_arch::{combined_loss, Classifier, HeadMode, OutputRequest};
use gradlab_autodiff::Gradients;
use gradlab_data::Batch;
use gradlab_dist::Communicator;
use gradlab_nn::{accuracy, Ctx, GradMap, LrSchedule, NnError, Optimizer};
use gradlab_tensor::Tensor;

use crate::error::{Result, TrainError};
use crate::optimizer::OptimizerSpec;
use crate::parallel::{first_failure, NoiseScale};

/// The seed of the randomness (dropout masks) of step `step` of a run
/// seeded `seed`. Multiplying the seed by an odd constant keeps runs of
/// neighbouring seeds from sharing masks at shifted steps.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_mul(0x9e37_79b9).wrapping_add(step)
}

/// One forward and backward pass at the current parameters.
pub struct Pass {
    /// The step's graph: tapped activations are read from it.
    pub cx: Ctx<f32>,
    /// The gradient of every trainable parameter, with the loss.
    pub grads: GradMap<f32>,
    /// The gradients of the tapped activations, when asked for.
    pub tap_grads: Option<Gradients<f32>>,
    /// The training loss (the combined loss with auxiliary heads).
    pub loss: f64,
    /// Accuracy of the final logits on the batch.
    pub accuracy: f64,
    /// Milliseconds of the forward pass and loss.
    pub forward_ms: f64,
    /// Milliseconds of the backward pass.
    pub backward_ms: f64,
}

/// Runs the model on `images` with every auxiliary head, takes the combined
/// loss against `labels` and back-propagates it; `seed` seeds dropout.
///
/// # Errors
/// Model, loss and autodiff errors (shapes, label range).
pub fn forward_backward<M: Classifier<f32> + ?Sized>(
    model: &mut M,
    images: Tensor<f32>,
    labels: &[usize],
    seed: u64,
    keep_taps: bool,
) -> Result<Pass> {
    on_pool_thread_if_small(images.len(), || {
        forward_backward_here(model, images, labels, seed, keep_taps)
    })
}

/// Input elements up to which a pass runs on a rayon pool thread (see
/// [`on_pool_thread_if_small`]): 16 images of 3x32x32.
const SMALL_PASS: usize = 16 * 3 * 32 * 32;

/// Runs `f` on a thread of rayon's pool when the pass's input has at most
/// [`SMALL_PASS`] elements, else on this thread.
///
/// A pass runs hundreds of parallel loops. Started from a pool thread they
/// share out their work directly; started from another thread each hands
/// its work over to the pool and sleeps until it is done, and at batch 1
/// those hand-overs kept the scheduler busy for about 40% of the step (the
/// ResNet-20 step took 13 ms this way, 7 ms on a pool thread). But a pass
/// on a pool thread allocates its activations there, in that thread's
/// malloc arena, and as freed memory is retained per arena (see
/// `gradlab_tensor::retain_freed_memory`) the process's peak grew: ResNet-20
/// at batch 128 peaked at 270-450 MiB instead of 217 MiB. One arena for
/// every thread fixed that but made the small models of the demo twice as
/// slow (threads waiting on the arena's lock). Large batches, where the
/// hand-overs cost about 3% of the step, stay on the calling thread.
pub(crate) fn on_pool_thread_if_small<R: Send>(elements: usize, f: impl FnOnce() -> R + Send) -> R {
    if elements <= SMALL_PASS {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

fn forward_backward_here<M: Classifier<f32> + ?Sized>(
    model: &mut M,
    images: Tensor<f32>,
    labels: &[usize],
    seed: u64,
    keep_taps: bool,
) -> Result<Pass> {
    let t0 = Instant::now();
    let mut cx = Ctx::new().with_seed(seed);
    let x = cx.input(images);
    let request = OutputRequest {
        heads: HeadMode::Auto,
        features: Vec::new(),
    };
    let outputs = model.forward_outputs(&mut cx, x, &request)?;
    let accuracy = accuracy(cx.value(outputs.logits)?, labels)?;
    let loss = combined_loss(&mut cx, &outputs, labels)?.total;
    let t1 = Instant::now();
    let (grads, tap_grads) = if keep_taps {
        let (g, t) = cx.backward_with_taps(loss)?;
        (g, Some(t))
    } else {
        (cx.backward(loss)?, None)
    };
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    Ok(Pass {
        loss: grads.loss().unwrap_or(f64::NAN),
        forward_ms: ms(t0, t1),
        backward_ms: ms(t1, Instant::now()),
        cx,
        grads,
        tap_grads,
        accuracy,
    })
}

/// What one training step did.
#[derive(Debug)]
pub struct StepOutput {
    /// The step's index (0-based; the number of updates before it).
    pub step: u64,
    /// Mini-batch training loss (the combined loss with auxiliary heads).
    pub loss: f64,
    /// Mini-batch accuracy of the final logits.
    pub accuracy: f64,
    /// The learning rate of the update.
    pub lr: f64,
    /// Milliseconds of the forward pass and loss.
    pub forward_ms: f64,
    /// Milliseconds of the backward pass.
    pub backward_ms: f64,
    /// Milliseconds of the update.
    pub update_ms: f64,
    /// Set when the loss or a gradient was not finite: the update was not
    /// applied, and the cause names the loss value or the parameter.
    pub non_finite: Option<NnError>,
    /// The gradient noise scale of the step, in a data-parallel step on
    /// more than one rank ([`Trainer::step_parallel`]); `None` otherwise.
    pub noise_scale: Option<NoiseScale>,
}

impl StepOutput {
    /// This output, or [`TrainError::NonFinite`] naming the step and the
    /// cause when the guard stopped the update.
    ///
    /// # Errors
    /// As said.
    pub fn finite(mut self) -> Result<StepOutput> {
        match self.non_finite.take() {
            Some(cause) => Err(TrainError::NonFinite {
                step: self.step,
                cause: Box::new(cause),
            }),
            None => Ok(self),
        }
    }
}

/// Trains a model step by step: an optimizer, an optional learning-rate
/// schedule, the run's seed and the step counter.
///
/// ```
/// use gradlab_arch::{PlainMlp, PlainMlpConfig};
/// use gradlab_data::{Batch, Dataset, Patterns, PatternsConfig};
/// use gradlab_nn::{ActivationKind, Scope};
/// use gradlab_train::{OptimizerSpec, Trainer};
/// let data = Patterns::new(PatternsConfig { len: 64, height: 8, width: 8, ..Default::default() })?;
/// let config = PlainMlpConfig::new(64, data.num_classes(), 3, 32, ActivationKind::Relu);
/// let mut net = PlainMlp::new(&Scope::new(0), &config)?;
/// let mut trainer = Trainer::new(&OptimizerSpec::sgd(0.1), 0)?;
/// let batch = Batch::from_indices(&data, &(0..32).collect::<Vec<_>>())?;
/// let out = trainer.step(&mut net, batch)?.finite()?;
/// assert!(out.loss.is_finite() && trainer.steps() == 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer {
    optimizer: Box<dyn Optimizer<f32>>,
    schedule: Option<Box<dyn LrSchedule>>,
    seed: u64,
    step: u64,
    keep_taps: bool,
    /// The flat gradient buffer of a data-parallel step, reused.
    flat: Vec<f32>,
}

/// The seed of rank `rank`'s randomness (dropout) in step `step`: rank 0
/// keeps [`step_seed`], the others get independent masks.
fn rank_step_seed(seed: u64, step: u64, rank: usize) -> u64 {
    step_seed(seed, step) ^ (rank as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

impl Trainer {
    /// A trainer with the optimizer `spec` builds, for a run seeded `seed`.
    ///
    /// # Errors
    /// [`TrainError::Spec`] for settings out of range.
    pub fn new(spec: &OptimizerSpec, seed: u64) -> Result<Self> {
        Ok(Trainer::with_optimizer(spec.build()?, seed))
    }

    /// A trainer with a ready optimizer.
    pub fn with_optimizer(optimizer: Box<dyn Optimizer<f32>>, seed: u64) -> Self {
        Trainer {
            optimizer,
            schedule: None,
            seed,
            step: 0,
            keep_taps: false,
            flat: Vec::new(),
        }
    }

    /// Sets the learning rate of every step from `schedule`.
    pub fn with_schedule(mut self, schedule: Box<dyn LrSchedule>) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Keeps the gradients of tapped activations for the observer of
    /// [`Trainer::step_observed`] (diagnostics need them; they cost memory).
    pub fn with_taps(mut self, keep: bool) -> Self {
        self.keep_taps = keep;
        self
    }

    /// Continues counting from `step` (after loading a checkpoint).
    pub fn starting_at(mut self, step: u64) -> Self {
        self.step = step;
        self
    }

    /// Updates done so far (the index of the next step).
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The optimizer (for checkpoints).
    pub fn optimizer(&self) -> &dyn Optimizer<f32> {
        &*self.optimizer
    }

    /// The optimizer, mutable (to load its state from a checkpoint).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer<f32> {
        &mut *self.optimizer
    }

    /// One training step on `batch`.
    ///
    /// # Errors
    /// As [`Trainer::step_observed`].
    pub fn step(&mut self, model: &mut dyn Classifier<f32>, batch: Batch) -> Result<StepOutput> {
        self.step_observed(model, batch, &mut |_, _| Ok(()))
    }

    /// The learning rate of the current step, set on the optimizer.
    fn current_lr(&mut self) -> f64 {
        match &self.schedule {
            Some(s) => {
                let lr = s.lr(self.step);
                self.optimizer.set_lr(lr);
                lr
            }
            None => self.optimizer.lr(),
        }
    }

    /// One data-parallel training step: `shard` is this rank's slice of
    /// the global batch (every rank's slice has the same size; see
    /// [`BatchStream::next_shard`](crate::BatchStream::next_shard)).
    ///
    /// Each rank runs forward and backward on its shard, then the ranks
    /// all-reduce, in one flat buffer, the gradients of every trainable
    /// parameter (summed in rank order, then divided by the number of
    /// ranks: the mean of the shards' mean-loss gradients, which is the
    /// gradient of the global batch's mean loss), and in a second, small
    /// one the shards' losses, accuracies, squared gradient norms (for
    /// [`StepOutput::noise_scale`]) and failure flags. `observe` then sees
    /// the reduced gradients and the global loss, and every rank applies
    /// the same update, or skips it when the reduced loss or gradients are
    /// not finite: every decision is taken on reduced numbers, so the
    /// ranks never diverge.
    ///
    /// Dropout masks differ between ranks (rank 0 uses [`step_seed`]).
    /// With one rank this is exactly [`Trainer::step_observed`].
    ///
    /// # Errors
    /// [`TrainError::RankFailed`] on every rank but the failing one when
    /// some rank's forward or backward failed (that rank returns its own
    /// error); [`TrainError::Spec`] when the shards differ in size;
    /// [`TrainError::Dist`] when a collective fails; the observer's errors
    /// (an observer must fail on every rank or on none).
    pub fn step_parallel(
        &mut self,
        model: &mut dyn Classifier<f32>,
        shard: Batch,
        comm: &dyn Communicator,
        observe: &mut dyn FnMut(&mut dyn Classifier<f32>, &Pass) -> Result<()>,
    ) -> Result<StepOutput> {
        if comm.size() == 1 {
            return self.step_observed(model, shard, observe);
        }
        let (rank, size) = (comm.rank(), comm.size());
        let step = self.step;
        let lr = self.current_lr();
        let examples = shard.len();
        let local = forward_backward(
            model,
            shard.images,
            &shard.labels,
            rank_step_seed(self.seed, step, rank),
            self.keep_taps,
        );
        // One slot per rank for failures, one per rank for shard sizes, then
        // the sums of loss, accuracy and squared gradient norm.
        let mut scalars = vec![0.0f64; 2 * size + 3];
        self.flat.clear();
        match &local {
            Ok(pass) => {
                scalars[size + rank] = examples as f64;
                scalars[2 * size] = pass.loss;
                scalars[2 * size + 1] = pass.accuracy;
                let flat = &mut self.flat;
                model.visit_params(&mut |p| {
                    if p.is_trainable() {
                        match pass.grads.get(p.name()) {
                            Some(g) if g.len() == p.len() => flat.extend_from_slice(g.as_slice()),
                            // Left for the guard to name after the reduction.
                            _ => flat.resize(flat.len() + p.len(), 0.0),
                        }
                    }
                });
                scalars[2 * size + 2] = flat.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            }
            Err(_) => scalars[rank] = 1.0,
        }
        comm.all_reduce_sum_f64(&mut scalars)?;
        self.step += 1;
        let mut pass = first_failure(comm, &scalars[..size], Some(step), local)?;
        let sizes = &scalars[size..2 * size];
        if sizes.iter().any(|&b| b != sizes[0]) {
            return Err(TrainError::Spec(format!(
                "step {step}: the ranks' shards differ in size ({sizes:?}); every rank must take the same number of examples"
            )));
        }
        let t = Instant::now();
        comm.all_reduce_sum_f32(&mut self.flat)?;
        let n = size as f32;
        for x in &mut self.flat {
            *x /= n;
        }
        let mut at = 0;
        let flat = &self.flat;
        let grads = &mut pass.grads;
        model.visit_params(&mut |p| {
            if p.is_trainable() {
                if let Some(g) = grads.get_mut(p.name()) {
                    if g.len() == p.len() {
                        g.as_slice_mut().copy_from_slice(&flat[at..at + p.len()]);
                    }
                }
                at += p.len();
            }
        });
        let reduce_ms = t.elapsed().as_secs_f64() * 1e3;
        let large_sq: f64 = flat.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        let per = |i: usize| scalars[2 * size + i] / size as f64;
        pass.loss = per(0);
        pass.accuracy = per(1);
        pass.grads.set_loss(pass.loss);
        pass.backward_ms += reduce_ms;
        observe(&mut *model, &pass)?;
        let out = StepOutput {
            step,
            loss: pass.loss,
            accuracy: pass.accuracy,
            lr,
            forward_ms: pass.forward_ms,
            backward_ms: pass.backward_ms,
            update_ms: 0.0,
            non_finite: None,
            noise_scale: NoiseScale::from_norms(examples, examples * size, per(2), large_sq),
        };
        self.guard_and_update(model, &pass.grads, out)
    }

    /// The end of every step: the non-finite guard (a NaN or infinity skips
    /// the update and is reported in `out`), then the optimizer update.
    fn guard_and_update(
        &mut self,
        model: &mut dyn Classifier<f32>,
        grads: &GradMap<f32>,
        mut out: StepOutput,
    ) -> Result<StepOutput> {
        if let Err(cause) = grads.check_finite(&*model) {
            out.non_finite = Some(cause);
            return Ok(out);
        }
        let t = Instant::now();
        self.optimizer.step(model, grads)?;
        out.update_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(out)
    }

    /// One training step on `batch`, calling `observe` after the backward
    /// pass and before the update (the parameters it sees are those the
    /// gradients were taken at). The observer may evaluate the model (a
    /// held-out check) but must leave its parameters and buffers as it
    /// found them. A non-finite loss or gradient skips the
    /// update and is reported in [`StepOutput::non_finite`]; the step still
    /// counts, so a caller that goes on does not reuse the step's seed.
    ///
    /// # Errors
    /// Model, loss and autodiff errors, and the observer's.
    pub fn step_observed(
        &mut self,
        model: &mut dyn Classifier<f32>,
        batch: Batch,
        observe: &mut dyn FnMut(&mut dyn Classifier<f32>, &Pass) -> Result<()>,
    ) -> Result<StepOutput> {
        let step = self.step;
        let lr = self.current_lr();
        let pass = forward_backward(
            model,
            batch.images,
            &batch.labels,
            step_seed(self.seed, step),
            self.keep_taps,
        )?;
        observe(&mut *model, &pass)?;
        self.step += 1;
        let out = StepOutput {
            step,
            loss: pass.loss,
            accuracy: pass.accuracy,
            lr,
            forward_ms: pass.forward_ms,
            backward_ms: pass.backward_ms,
            update_ms: 0.0,
            non_finite: None,
            noise_scale: None,
        };
        self.guard_and_update(model, &pass.grads, out)
    }
}
