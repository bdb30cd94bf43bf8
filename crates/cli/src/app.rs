//! The command line: global options and one subcommand per task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cdphub",
    version,
    about = "cdphub: a columnar customer-data hub (Parquet lake, SQL models, Delta tables)",
    long_about = "cdphub brings a brand's scattered customer data together: raw extracts land as \
Parquet in object storage, SQL models clean and stitch them into Delta tables, and every table \
is queryable with SQL.\n\nStart with `cdphub demo`, which generates demo data, runs the models \
and prints a tour."
)]
pub struct Cli {
    /// Project directory holding cdphub.toml and sql/.
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub project: PathBuf,

    /// Lake root URL: a directory, file:///abs/path, s3://bucket/prefix or memory://.
    #[arg(long, global = true, env = "CDPHUB_LAKE", value_name = "URL")]
    pub lake: Option<String>,

    /// More log output (-v info, -vv debug); CDPHUB_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate demo data if absent, run the models and print a tour.
    Demo(DemoArgs),
    /// Run the SQL models in dependency order and publish their tables.
    Run(RunArgs),
    /// Show the model graph: each model, what it reads and its file.
    Models(ModelsArgs),
    /// List the tables of the catalog with their kind and row counts.
    Tables,
    /// Run one SQL query against the catalog and print the result.
    Query(QueryArgs),
    /// Inspect identity resolution (persons, refused links, quality against the truth).
    Identity(IdentityArgs),
    /// Serve every table over Arrow Flight SQL to BI tools, notebooks and SQL clients.
    Serve(ServeArgs),
    /// Manage the Flight SQL users in cdphub.toml (password hashes only).
    User(UserArgs),
    /// Export data out of the hub (audiences for activation).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub action: ExportAction,
}

#[derive(Debug, Subcommand)]
pub enum ExportAction {
    /// Write an audience (a model in sql/marts/audiences/) with unified_id and the contact
    /// fields its consent purpose allows, to a file path, file:// or s3:// URL.
    Audience(ExportAudienceArgs),
}

#[derive(Debug, Args)]
pub struct ExportAudienceArgs {
    /// The audience: `win_back` for sql/marts/audiences/audience_win_back.sql.
    pub name: String,
    /// Where to write: a file path, file:///abs/file.csv, s3://bucket/key.parquet, or a
    /// folder ending in `/` (the file is then named after the audience).
    #[arg(long, value_name = "URL")]
    pub to: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub struct IdentityArgs {
    #[command(subcommand)]
    pub action: IdentityAction,
}

#[derive(Debug, Subcommand)]
pub enum IdentityAction {
    /// Cluster sizes, largest persons, refused links, and pairwise precision / recall / F1
    /// against `_truth/record_persons` when the lake has it.
    Report(IdentityReportArgs),
}

#[derive(Debug, Args)]
pub struct IdentityReportArgs {
    /// How many of the largest persons to list.
    #[arg(long, default_value_t = 10)]
    pub largest: usize,
    /// `json` prints only the quality figures, for scripts and benchmarks.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on (default: server.port, 50051). 0 picks a free port.
    #[arg(long)]
    pub port: Option<u16>,

    /// Address to bind (default: server.host, 127.0.0.1). Binding beyond loopback needs real
    /// passwords, and TLS is strongly advised.
    #[arg(long)]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user (or, with --replace, change its role and password) in cdphub.toml.
    Add {
        /// User name, as typed in the client.
        name: String,
        /// One of the [roles.<name>] of cdphub.toml.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input (required: passwords never
        /// go on the command line).
        #[arg(long)]
        password_stdin: bool,
        /// Overwrite an existing user.
        #[arg(long)]
        replace: bool,
    },
    /// List the users and their roles.
    List,
    /// Remove a user.
    Remove { name: String },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub action: Option<DemoAction>,

    #[command(flatten)]
    pub data: DemoDataArgs,

    /// Generate the data again even when raw files exist.
    #[arg(long)]
    pub regenerate: bool,

    /// Do not serve the tables afterwards (for scripts).
    #[arg(long)]
    pub no_serve: bool,

    /// Port of the Flight SQL server the demo ends with (default: server.port, 50051).
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Write the demo sources as Parquet under raw/ and the ground truth under _truth/.
    Generate(DemoDataArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DemoDataArgs {
    /// Size: 1 means 100,000 persons; fractions work (0.01 = 1,000 persons).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,

    /// Seed of the generator; the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Models to run: `name`, `schema.name`, a schema, `name+` (and downstream), `+name`
    /// (and upstream). Repeat for several. Default: every model.
    #[arg(long, short, value_name = "SELECTOR", num_args = 1..)]
    pub select: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Output as text or as a Graphviz graph.
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run, with schema-qualified table names (e.g. marts.daily_revenue).
    pub sql: String,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write to this file instead of standard output (required for parquet on a terminal).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With --format table, show at most this many rows.
    #[arg(long, default_value_t = 200)]
    pub max_rows: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Parquet,
}
