//! The model runner: discovers `sql/`, orders the graph, tests and publishes each model.

pub mod audience;
pub mod data_tests;
pub mod error;
pub mod graph;
pub mod history;
pub mod project;
pub mod runner;

pub use error::{ModelError, Result};
pub use graph::ModelGraph;
pub use project::{Model, ModelName, discover};
pub use runner::{ModelOutcome, ModelStatus, NoProgress, RunOptions, RunProgress, RunReport, run};
