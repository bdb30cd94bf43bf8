//! Runs every `tests/slt/*.slt` file against a session with cdphub's functions.

mod attribution;

use std::path::PathBuf;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use cdphub_functions::{AttributionSettings, IdentityConfig, register_all, register_attribution};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct Session {
    ctx: SessionContext,
}

#[async_trait::async_trait]
impl AsyncDB for Session {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = self.ctx.sql(sql).await?;
        let columns = df.schema().fields().len();
        let batches = df.collect().await?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let text = f.value(row).to_string();
                            if text.is_empty() {
                                "(empty)".to_string()
                            } else {
                                text
                            }
                        })
                        .collect(),
                );
            }
        }
        if columns == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "cdphub"
    }
}

fn any_types(_: &Vec<DefaultColumnType>, _: &Vec<DefaultColumnType>) -> bool {
    true
}

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
