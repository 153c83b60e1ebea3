//! The built-in differentiable ops, one family per file. Each file holds the
//! op types (forward and backward side by side) and the `Graph` methods that
//! apply them.

pub mod add_relu;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;
