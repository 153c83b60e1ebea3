//! The SPEC grammar (`name:key=value,...`), shared with the library's
//! optimizer and schedule specs: see [`gradlab_train::spec`].

pub use gradlab_train::spec::{unknown, Spec};
