//! Integration tests of cdphub-datagen against an in-memory object store.

mod determinism;
mod files;
mod realism;
mod support;
mod truth;
