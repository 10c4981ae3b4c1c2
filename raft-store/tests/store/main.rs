//! Integration tests of the store through its public API: openraft's own storage suite,
//! and restart scenarios (write, drop everything, reopen the same directory).
//!
//! One test binary, so RocksDB is linked once.

mod fake_app;
mod force_new_cluster;
mod hooks;
mod reopen;
mod suite;
