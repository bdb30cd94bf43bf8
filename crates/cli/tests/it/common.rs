//! A throwaway project (the repository's config and models) with its own lake.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SCALE: &str = "0.005";
pub const SEED: &str = "7";

pub struct TestProject {
    pub dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
    lake: Option<String>,
}

impl TestProject {
    /// A copy of the repository's `cdphub.toml` and `sql/`, with the lake in the temp dir.
    pub fn new() -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(repo.join("cdphub.toml"), dir.path().join("cdphub.toml")).unwrap();
        copy_dir(&repo.join("sql"), &dir.path().join("sql"));
        Self {
            dir,
            envs: Vec::new(),
            lake: None,
        }
    }

    pub fn with_lake(mut self, lake: &str) -> Self {
        self.lake = Some(lake.to_string());
        self
    }

    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The lake folder of a local project (the default `data/lake`).
    pub fn lake_path(&self, relative: &str) -> PathBuf {
        self.path("data/lake").join(relative)
    }

    /// The `run-<id>` folders of a local curated table (`schema.table`), one per publish
    /// whose files are still there, oldest first.
    pub fn run_folders(&self, table: &str) -> Vec<PathBuf> {
        let folder = self.lake_path(&format!("curated/{}", table.replace('.', "/")));
        let mut runs: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-"))
            // On disk a deleted run may leave empty folders behind (object stores have none).
            .filter(|p| holds_files(p))
            .collect();
        runs.sort();
        runs
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn cdphub(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cdphub"));
        command.arg("--project").arg(self.dir.path());
        command.env_remove("CDPHUB_LAKE");
        if let Some(lake) = &self.lake {
            command.arg("--lake").arg(lake);
        }
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command.args(args).output().expect("run cdphub")
    }

    /// Runs and insists on success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cdphub(args);
        assert!(
            output.status.success(),
            "cdphub {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and insists on failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.cdphub(args);
        assert!(
            !output.status.success(),
            "cdphub {args:?} should have failed\nstdout:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(!stderr.contains("panicked"), "cdphub panicked:\n{stderr}");
        stderr
    }

    /// Runs and insists on failure, returning stdout and stderr together (a failed model's
    /// error is in the run summary on stdout).
    pub fn fails_with_output(&self, args: &[&str]) -> String {
        let output = self.cdphub(args);
        assert!(
            !output.status.success(),
            "cdphub {args:?} should have failed"
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    pub fn generate(&self) {
        self.ok(&["demo", "generate", "--scale", SCALE, "--seed", SEED]);
    }

    /// One value from a one-row, one-column query.
    pub fn scalar(&self, sql: &str) -> String {
        let csv = self.ok(&["query", "--format", "csv", sql]);
        let mut lines = csv.lines();
        lines.next().expect("csv header");
        lines.next().unwrap_or_default().to_string()
    }

    /// The rows of a table as sorted CSV lines: its contents, whatever the file layout.
    pub fn contents(&self, table: &str) -> Vec<String> {
        self.rows(&format!("SELECT * FROM {table}"))
    }

    /// The rows of a query as sorted CSV lines.
    pub fn rows(&self, sql: &str) -> Vec<String> {
        let csv = self.ok(&["query", "--format", "csv", sql]);
        let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
        lines.sort();
        lines
    }
}

fn holds_files(folder: &Path) -> bool {
    std::fs::read_dir(folder).unwrap().any(|e| {
        let path = e.unwrap().path();
        path.is_file() || holds_files(&path)
    })
}

/// What `cdphub run` prints when every model of the repository's `sql/` succeeds.
pub fn all_models_succeeded() -> String {
    format!("{} succeeded, 0 failed, 0 skipped", model_count())
}

/// How many models the repository's `sql/` holds.
pub fn model_count() -> usize {
    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    count(&p)
                } else {
                    usize::from(p.extension().is_some_and(|e| e == "sql"))
                }
            })
            .sum()
    }
    count(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql"))
}

/// Tables whose contents a re-run on the same input reproduces exactly.
pub const MODEL_TABLES: &[&str] = &[
    "staging.customers",
    "identity.links",
    "identity.id_map",
    "identity.record_links",
    "marts.customer_profiles",
    "staging.orders",
    "staging.order_lines",
    "staging.identities",
    "staging.touchpoints",
    "staging.ad_spend",
    "staging.consents",
    "marts.daily_revenue",
    "staging.web_sessions",
    "staging.email_events",
    "marts.customer_consents",
    "marts.customer_traits",
    "marts.purchase_summary",
    "marts.rfm_scores",
    "marts.ltv_model",
    "marts.customer_ltv",
    "marts.daily_kpis",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
