//! Help texts about the SPEC grammar: a short one under the commands that
//! take specs, and the whole grammar for `gradlab help specs`, so that an
//! installed binary documents itself.

/// Under `summary --help` and `bench --help`: they take a model, no data.
pub const MODEL_HELP: &str = "\
Model SPEC: name[:key=value,...]; lists use '+'.
  resnet:depth=20  plain-resnet:depth=56  resnet:depth=20,width=32
  plain-cnn:depth=20,width=16,act=sigmoid,bn=false  plain-mlp:depth=10,width=64,act=tanh
  mobilenet:width=0.5  resnet:depth=20,aux=stage1+stage2
Every model with its keys and defaults: gradlab help specs";

/// Under `train --help` and `diagnose --help`: they take a model and data.
pub const SPEC_HELP: &str = "\
SPEC grammar (for --model and --data): name[:key=value,...]; lists use '+'.
  models: resnet:depth=20  plain-resnet:depth=56  resnet:depth=20,width=32
          plain-cnn:depth=20,width=16,act=sigmoid,bn=false
          plain-mlp:depth=10,width=64,act=tanh  plain-mlp:depth=20,act=relu,gain=3
          mobilenet:width=0.5  resnet:depth=20,aux=stage1+stage2
  data:   digits  digits:size=16  patterns:classes=10,size=16,signal=0.5,n=4000
          noise:classes=10,size=16,n=2000  shuffled:digits  subset:digits,frac=0.1
          idx:IMAGES,LABELS  cifar:DIR
Every model and dataset with its keys and defaults: gradlab help specs";

/// `gradlab help specs`: the whole grammar.
pub const SPECS: &str = "\
--model and --data take name[:key=value,...]; lists inside a value use '+'.
An unknown name or key is an error that lists the valid ones.

MODELS (keys, defaults in parentheses)
  resnet        depth (20; 6n+2, or 9n+2 with block=bottleneck), width (16: stages of
                w, 2w, 4w), block (basic | bottleneck), shortcut (a: identity with
                zero-padded channels | b: 1x1 projection), preact (false), act (relu),
                bn (true), gain (1), aux, aux-weight (0.3)
  plain-resnet  the same keys: the plain twin, every shortcut removed, nothing else changed
  plain-cnn     depth (10), width (16), act (relu), bn (false), gain (1), bias,
                shortcut-every, aux, aux-weight
  plain-mlp     depth (10), width (64), act (relu), bn (false), gain (1), bias,
                shortcut-every, aux, aux-weight
  mobilenet     width (1.0: width multiplier), v2 (false: separable blocks; true:
                inverted residuals), act, aux, aux-weight

  act is one of relu, tanh, sigmoid, leaky-relu, gelu. gain multiplies the standard
  deviation of the default initialisation (Kaiming normal for ResNets, PyTorch's
  default for the plain stacks). bias=-2 sets every bias to -2 (dead ReLUs).
  aux=stage1+stage2 attaches auxiliary heads (global average pooling + linear) at
  those points; `gradlab summary --model SPEC` lists a network's points.

DATA
  digits             size (8; 16 or 32 upscale bilinearly): the 1797 embedded digits
  patterns           classes (10), size (16), channels (1), signal (1.0, in [0, 1]),
                     jitter (0.1), n (4000)
  noise              classes (10), size (16), channels (1), n (2000): pure noise
  shuffled:SPEC      seed: the training labels of SPEC permuted
  subset:SPEC        frac (required), seed: a fraction of SPEC's training split
  idx:IMAGES,LABELS  MNIST or Fashion-MNIST IDX files, gzip or plain
  cifar:DIR          a CIFAR-10 binary folder (data_batch_1.bin ... test_batch.bin)

  A wrapper (shuffled, subset) takes another data spec first and keeps only its own
  keys; the rest go to the inner spec: subset:digits:size=16,frac=0.1. Every dataset
  but CIFAR-10 is split 80/20 into training and held-out parts by the seed; wrappers
  change the training part only, so held-out accuracy is measured on true labels.

EXAMPLES
  gradlab train --model resnet:depth=20 --data digits:size=16
  gradlab diagnose --model plain-mlp:depth=20,width=32,act=sigmoid --data patterns:size=8
  gradlab diagnose --model resnet:depth=20 --data noise:size=8 --shuffle-control
  gradlab summary --model resnet:depth=20,aux=stage1+stage2";
