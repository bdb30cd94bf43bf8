//! Progress bars for long work; they draw only on a terminal.

use std::sync::Mutex;
use std::time::Duration;

use cdphub_models::{ModelName, ModelOutcome, ModelStatus, RunProgress};
use indicatif::{ProgressBar, ProgressStyle};

fn bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("static progress template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One bar over the models of a run, with a line per finished model.
pub struct RunBar {
    bar: ProgressBar,
    running: Mutex<Vec<String>>,
}

impl RunBar {
    pub fn new(models: u64) -> Self {
        Self {
            bar: bar(
                models,
                "{spinner} models [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}",
            ),
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn show_running(&self, running: &[String]) {
        self.bar
            .set_message(format!("running {}", running.join(", ")));
    }
}

impl RunProgress for RunBar {
    fn started(&self, model: &ModelName) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.push(model.to_string());
        self.show_running(&running);
    }

    fn finished(&self, outcome: &ModelOutcome) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|m| *m != outcome.model.to_string());
        self.show_running(&running);
        let detail = match outcome.status {
            ModelStatus::Success => format!(
                "{} rows, version {}",
                outcome.rows_written.unwrap_or_default(),
                outcome.delta_version.unwrap_or_default()
            ),
            ModelStatus::Failed => "see below".to_string(),
            ModelStatus::Skipped => "upstream failed".to_string(),
        };
        let line = format!(
            "  {:<8} {:<32} {:>7.2}s  {detail}",
            outcome.status.as_str(),
            outcome.model.to_string(),
            outcome.duration_ms() as f64 / 1000.0
        );
        // A hidden bar (not a terminal) drops println: print the line plainly then.
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
        self.bar.inc(1);
    }
}

/// A bar per generation stage (one per source).
pub struct GenerateBar {
    bar: Mutex<Option<ProgressBar>>,
}

impl GenerateBar {
    pub fn new() -> Self {
        Self {
            bar: Mutex::new(None),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

impl cdphub_datagen::Progress for GenerateBar {
    fn stage(&self, name: &str, total_units: u64) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = slot.take() {
            previous.finish_and_clear();
        }
        let new = bar(
            total_units,
            "{spinner} {prefix:<16} [{bar:30}] {pos}/{len} {elapsed_precise}",
        );
        new.set_prefix(name.to_string());
        *slot = Some(new);
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.inc(units);
        }
    }
}

/// A bar over the rows of an export.
pub fn rows_bar(total: u64, prefix: &str) -> ProgressBar {
    let new = bar(
        total,
        "{spinner} {prefix} [{bar:30}] {pos}/{len} rows {elapsed_precise}",
    );
    new.set_prefix(prefix.to_string());
    new
}
