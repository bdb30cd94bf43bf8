//! `cdphub user`: Flight SQL users in cdphub.toml, stored as argon2 hashes (never in clear).

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cdphub_lake::{Config, Project};
use toml_edit::{DocumentMut, Item, Table, value};

use super::Workspace;
use crate::app::UserAction;

pub fn user(workspace: &Workspace, action: UserAction) -> Result<ExitCode> {
    let project = &workspace.project;
    match action {
        UserAction::Add {
            name,
            role,
            password_stdin,
            replace,
        } => {
            if !password_stdin {
                bail!(
                    "pass --password-stdin and type the password on standard input (passwords never go on the command line): echo '<password>' | cdphub user add {name} --role {role} --password-stdin"
                );
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']);
            add(project, &name, &role, password, replace)?;
            println!(
                "user `{name}` (role {role}) written to {}; restart `cdphub serve` to apply",
                project.config_path.display()
            );
        }
        UserAction::List => {
            if project.config.users.is_empty() {
                println!("No users in {}.", project.config_path.display());
            }
            for (name, config) in &project.config.users {
                println!("{name:<16} role {}", config.role);
            }
        }
        UserAction::Remove { name } => {
            let mut doc = load(project)?;
            let removed = doc
                .get_mut("users")
                .and_then(Item::as_table_like_mut)
                .and_then(|users| users.remove(&name));
            if removed.is_none() {
                bail!("no user `{name}` in {}", project.config_path.display());
            }
            save(project, &doc)?;
            println!(
                "user `{name}` removed from {}",
                project.config_path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `[users.<name>]` with the role and the hash of `password`, keeping the rest of the
/// file (comments included) as it is.
pub fn add(project: &Project, name: &str, role: &str, password: &str, replace: bool) -> Result<()> {
    if !cdphub_lake::config::is_identifier(name) {
        bail!("`{name}` is not a valid user name: use lower-case letters, digits and `_`");
    }
    if !project.config.roles.contains_key(role) {
        let roles: Vec<&str> = project.config.roles.keys().map(String::as_str).collect();
        bail!(
            "role `{role}` is not defined in {} (roles: {}); add a [roles.{role}] section first",
            project.config_path.display(),
            if roles.is_empty() {
                "none".to_string()
            } else {
                roles.join(", ")
            }
        );
    }
    if password.chars().count() < 8 {
        bail!("the password is too short: use at least 8 characters");
    }
    if project.config.users.contains_key(name) && !replace {
        bail!("user `{name}` already exists; pass --replace to change its role and password");
    }
    let hash = cdphub_flight::hash_password(password)?;
    let mut doc = load(project)?;
    let users = doc
        .entry("users")
        .or_insert_with(|| {
            let mut table = Table::new();
            table.set_implicit(true);
            Item::Table(table)
        })
        .as_table_mut()
        .context("`users` in cdphub.toml must be a table of [users.<name>] sections")?;
    let mut entry = Table::new();
    entry.insert("role", value(role));
    entry.insert("password-hash", value(hash));
    users.insert(name, Item::Table(entry));
    save(project, &doc)
}

fn load(project: &Project) -> Result<DocumentMut> {
    let text = std::fs::read_to_string(&project.config_path)
        .with_context(|| format!("reading {}", project.config_path.display()))?;
    text.parse::<DocumentMut>()
        .with_context(|| format!("parsing {}", project.config_path.display()))
}

/// Checks the new text parses as a config, then replaces the file atomically.
fn save(project: &Project, doc: &DocumentMut) -> Result<()> {
    let text = doc.to_string();
    Config::parse(&text, &project.config_path)?;
    let tmp = project.config_path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &project.config_path)
        .with_context(|| format!("replacing {}", project.config_path.display()))?;
    Ok(())
}
