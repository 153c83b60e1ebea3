//! # gradlab-autodiff
//!
//! Reverse-mode automatic differentiation over [`gradlab_tensor::Tensor`].
//!
//! - [`Graph`] is the tape of one step: an arena of nodes in the order they
//!   were computed, addressed by small copyable [`Var`] handles. Values are
//!   computed eagerly.
//! - [`Op`] is one differentiable operation (forward and vector-Jacobian
//!   product side by side); implement it for your own operations.
//! - [`Graph::backward`] returns [`Gradients`] for every node, leaf or
//!   intermediate, so diagnostics can read activation gradients;
//!   [`Graph::backward_retain`] keeps only what you ask for.
//! - [`gradcheck`] compares any backward with central finite differences in
//!   `f64`, like `torch.autograd.gradcheck`.
//!
//! Layout: `graph.rs` (tape, backward, gradients), `op.rs` (the trait),
//! `ops/` (built-in ops, one family per file, each with its `Graph` methods),
//! `gradcheck.rs`.
//!
//! ```
//! use gradlab_autodiff::Graph;
//! use gradlab_tensor::Tensor;
//! let mut g = Graph::<f64>::new();
//! let w = g.param(Tensor::rand_normal(&[3, 2], 0.0, 0.1, 0)?);
//! let x = g.constant(Tensor::ones(&[4, 3]));
//! let logits = g.matmul(x, w)?;
//! let loss = g.cross_entropy(logits, &[0, 1, 1, 0])?;
//! let grads = g.backward(loss)?;
//! assert_eq!(grads.get(w).unwrap().shape(), &[3, 2]);
//! # Ok::<(), gradlab_autodiff::AutodiffError>(())
//! ```

mod error;
pub mod gradcheck;
mod graph;
mod op;
pub mod ops;

pub use error::{AutodiffError, Result};
pub use graph::{Gradients, Graph, Retain, Var};
pub use op::{expect_arity, Op};
