//! Runs every `tests/slt/*.slt` file against a session with cdphub's functions.

mod attribution;

use std::path::PathBuf;

use cdphub_functions::{AttributionSettings, IdentityConfig, register_all, register_attribution};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

mod slt_session;
use slt_session::{Session, any_types};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_logic_tests() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async {
            let ctx = SessionContext::new();
            let config = IdentityConfig {
                source_priority: vec!["crm_customers".into(), "orders".into()],
                ..IdentityConfig::default()
            };
            register_all(&ctx, &config, "test config").map_err(DataFusionError::from)?;
            register_attribution(&ctx, &AttributionSettings::default(), "test config")
                .map_err(DataFusionError::from)?;
            Ok(Session { ctx })
        });
        runner.with_column_validator(any_types);
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
