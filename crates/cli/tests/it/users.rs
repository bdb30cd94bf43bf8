//! `cdphub user`: users land in cdphub.toml as argon2 hashes, comments and other keys kept.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::TestProject;

fn add(project: &TestProject, args: &[&str], password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdphub"))
        .arg("--project")
        .arg(project.dir.path())
        .args(["user", "add"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn user_add_writes_a_hash_never_the_password() {
    let project = TestProject::new();
    let out = add(
        &project,
        &["ana", "--role", "analyst", "--password-stdin"],
        "correct horse battery",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    assert!(config.contains("[users.ana]"), "{config}");
    assert!(config.contains("$argon2id$"), "{config}");
    assert!(!config.contains("correct horse battery"));
    assert!(
        config.contains("# cdphub project configuration."),
        "comments are kept"
    );
    let list = project.ok(&["user", "list"]);
    assert!(list.contains("ana") && list.contains("analyst"), "{list}");

    // Again without --replace: refused; with it: the role changes.
    let again = add(
        &project,
        &["ana", "--role", "admin", "--password-stdin"],
        "another password",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--replace"));
    let replaced = add(
        &project,
        &["ana", "--role", "admin", "--password-stdin", "--replace"],
        "another password",
    );
    assert!(replaced.status.success());
    assert!(
        project
            .ok(&["user", "list"])
            .contains("ana              role admin")
    );
}

#[test]
fn user_add_refuses_unknown_roles_short_passwords_and_argv_passwords() {
    let project = TestProject::new();
    let out = add(
        &project,
        &["bob", "--role", "superuser", "--password-stdin"],
        "long enough pw",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("role `superuser` is not defined"));
    let out = add(
        &project,
        &["bob", "--role", "analyst", "--password-stdin"],
        "short",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
    let err = project.fails(&["user", "add", "bob", "--role", "analyst"]);
    assert!(err.contains("--password-stdin"), "{err}");
}

#[test]
fn plain_text_passwords_in_config_are_refused() {
    let project = TestProject::new();
    let config = std::fs::read_to_string(project.path("cdphub.toml")).unwrap();
    let start = config.find("[users.analyst]").unwrap();
    let end = start + config[start..].find("\n\n").unwrap();
    let edited = format!(
        "{}[users.analyst]\nrole = \"analyst\"\npassword-hash = \"hunter2\"{}",
        &config[..start],
        &config[end..]
    );
    project.write("cdphub.toml", &edited);
    let err = project.fails(&["tables"]);
    assert!(
        err.contains("users.analyst.password-hash") && err.contains("argon2"),
        "{err}"
    );
}
