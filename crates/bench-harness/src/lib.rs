//! Cross-crate criterion benchmarks for framewire (pipeline, loopback) live in `benches/`;
//! micro-benchmarks live beside the code they measure. This library holds what they share.
//!
//! The benchmark suite and `cargo xtask bench` are their own issue; this crate is the place
//! they go.
