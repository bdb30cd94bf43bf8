//! Generates the demo lake into a temporary local directory and prints the report and the
//! elapsed time: `cargo run --release -p cdphub-datagen --example gen -- [scale] [seed] [dir]`.
//! With a `dir`, the files are kept there instead of in a temporary directory.

use std::sync::Arc;
use std::time::Instant;

use cdphub_datagen::{GenerateOptions, Progress, generate};
use object_store::local::LocalFileSystem;
use object_store::path::Path;

/// Prints when each stage starts, with the time since the beginning.
struct StageTimer(Instant);

impl Progress for StageTimer {
    fn stage(&self, name: &str, total_units: u64) {
        eprintln!(
            "{:>7.2}s  {name} ({total_units} units)",
            self.0.elapsed().as_secs_f64()
        );
    }
    fn advance(&self, _units: u64) {}
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(42);
    let temp = tempfile::tempdir()?;
    let dir = match args.next() {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            std::path::PathBuf::from(dir)
        }
        None => temp.path().to_path_buf(),
    };
    let store = Arc::new(LocalFileSystem::new_with_prefix(&dir)?);
    let options = GenerateOptions { scale, seed };

    let started = Instant::now();
    let report = generate(store, &Path::from(""), &options, &StageTimer(started)).await?;
    let elapsed = started.elapsed();

    println!(
        "scale {scale}, seed {seed}: {} persons into {}",
        report.persons,
        dir.display()
    );
    println!(
        "{:<14} {:>12} {:>6} {:>14}",
        "source", "rows", "files", "bytes"
    );
    for s in &report.sources {
        println!(
            "{:<14} {:>12} {:>6} {:>14}",
            s.source, s.rows, s.files, s.bytes
        );
    }
    println!("{:<14} {:>12}", "_truth", report.truth_rows);
    println!("generated in {:.2} s", elapsed.as_secs_f64());
    Ok(())
}
