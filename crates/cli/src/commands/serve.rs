//! `cdphub serve`: the Arrow Flight SQL endpoint, with connection help for the usual clients.

use std::process::ExitCode;

use anyhow::Result;
use cdphub_flight::{DEMO_PASSWORDS, FlightServer};
use cdphub_lake::Project;

use super::Workspace;
use crate::app::ServeArgs;

pub async fn serve(workspace: &Workspace, args: &ServeArgs) -> Result<ExitCode> {
    let server = bind(workspace, args).await?;
    print_connection_help(&server, &workspace.project);
    server.run(shutdown_signal()).await?;
    println!("Server stopped; audit log flushed.");
    Ok(ExitCode::SUCCESS)
}

/// Binds with the flags applied over config and env (shared with `cdphub demo`).
pub async fn bind(workspace: &Workspace, args: &ServeArgs) -> Result<FlightServer> {
    let mut project = workspace.project.clone();
    if let Some(port) = args.port {
        project.config.server.port = port;
    }
    if let Some(host) = &args.host {
        project.config.server.host = host.clone();
    }
    Ok(FlightServer::bind(project, workspace.lake.clone()).await?)
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub fn print_connection_help(server: &FlightServer, project: &Project) {
    let url = server.url();
    let addr = server.local_addr();
    let (user, password) = example_credentials(project);
    let tls = server.tls();
    println!("\nArrow Flight SQL server listening on {url}");
    if project.config.users.is_empty() {
        println!(
            "  No users are configured yet: add one with\n    echo '<password>' | cdphub user add <name> --role <role> --password-stdin"
        );
    } else {
        println!("  Users:");
        for (name, config) in &project.config.users {
            let demo = DEMO_PASSWORDS
                .iter()
                .find(|p| cdphub_flight::auth::verify_password(p, &config.password_hash));
            match demo {
                Some(p) => println!("    {name:<10} role {:<10} demo password: {p}", config.role),
                None => println!("    {name:<10} role {}", config.role),
            }
        }
    }
    let jdbc_tls = if tls { "true" } else { "false" };
    let insecure = if tls { "False" } else { "True" };
    println!(
        "
Python (ADBC):
  import adbc_driver_flightsql.dbapi as flightsql
  conn = flightsql.connect(\"{url}\", db_kwargs={{\"username\": \"{user}\", \"password\": \"{password}\"}})
  cur = conn.cursor()
  cur.execute(\"SELECT * FROM marts.daily_revenue ORDER BY day DESC LIMIT 10\")
  print(cur.fetch_arrow_table())

DBeaver / JDBC (driver: Arrow Flight SQL JDBC, flight-sql-jdbc-driver):
  jdbc:arrow-flight-sql://{addr}?useEncryption={jdbc_tls}&user={user}&password={password}

SQLAlchemy / Superset (flightsql-dbapi):
  datafusion://{user}:{password}@{addr}?insecure={insecure}

Stop with Ctrl-C (the audit log in hub.audit_log is flushed on the way out)."
    );
}

fn example_credentials(project: &Project) -> (String, String) {
    for (name, config) in &project.config.users {
        if let Some(p) = DEMO_PASSWORDS
            .iter()
            .find(|p| cdphub_flight::auth::verify_password(p, &config.password_hash))
        {
            return (name.clone(), (*p).to_string());
        }
    }
    let user = project
        .config
        .users
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "<user>".into());
    (user, "<password>".into())
}
