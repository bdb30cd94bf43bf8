//! Audiences: models in `sql/marts/audiences/` that list people for one marketing purpose.
//!
//! `sql/marts/audiences/audience_<name>.sql` builds `marts.audience_<name>` (like any model
//! in a sub-folder of its schema) and is exported as `cdphub export audience <name>`. Its
//! sidecar must name the consent purpose:
//!
//! ```toml
//! [audience]
//! purpose = "email_marketing"
//! ```
//!
//! Every audience gets a data test that fails when a row lacks that consent in
//! `marts.customer_consents`, so a table that would contact someone who said no is never
//! published. The export keeps only `unified_id` and the contact fields the purpose allows
//! ([`contact_fields`]).

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};
use crate::project::{ModelName, ModelSettings, SqlTest};

/// Where audiences live, below the models folder.
pub const AUDIENCE_FOLDER: [&str; 2] = ["marts", "audiences"];
/// The table-name prefix of an audience; the export name is the rest.
pub const AUDIENCE_PREFIX: &str = "audience_";
/// The per-person consent table the audiences are checked against.
pub const CONSENT_TABLE: &str = "marts.customer_consents";

/// Consent purposes and the contact fields an export for each may carry.
pub const PURPOSES: &[(&str, &[&str])] = &[
    ("email_marketing", &["email"]),
    ("sms_marketing", &["phone"]),
    ("personalization", &[]),
    ("analytics", &[]),
];

/// The `[audience]` table of a model's sidecar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AudienceSettings {
    /// The consent purpose every person listed must have granted.
    pub purpose: String,
}

/// The contact fields an export for `purpose` carries besides `unified_id`.
pub fn contact_fields(purpose: &str) -> Option<&'static [&'static str]> {
    PURPOSES
        .iter()
        .find(|(name, _)| *name == purpose)
        .map(|(_, fields)| *fields)
}

/// The name an audience is exported by: its table name without `audience_`.
pub fn export_name(model: &ModelName) -> &str {
    model
        .table
        .strip_prefix(AUDIENCE_PREFIX)
        .unwrap_or(&model.table)
}

/// Whether `relative` (a model path below the models folder) is in the audiences folder.
pub fn in_audience_folder(relative: &Path) -> bool {
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    parts.len() > AUDIENCE_FOLDER.len() && parts[..AUDIENCE_FOLDER.len()] == AUDIENCE_FOLDER
}

/// Checks an audience's name and purpose and adds its consent test. `settings_path` is the
/// sidecar, for errors.
pub fn check(
    name: &ModelName,
    in_folder: bool,
    settings: &mut ModelSettings,
    settings_path: &Path,
) -> Result<()> {
    let invalid = |message: String| ModelError::Settings {
        path: settings_path.to_path_buf(),
        message,
    };
    let Some(audience) = &settings.audience else {
        if in_folder {
            return Err(invalid(format!(
                "{name} is an audience (it sits in sql/{}/): add\n\n[audience]\npurpose = \"email_marketing\"\n\nwith the consent purpose it is for ({})",
                AUDIENCE_FOLDER.join("/"),
                purpose_names()
            )));
        }
        return Ok(());
    };
    if !in_folder || !name.table.starts_with(AUDIENCE_PREFIX) {
        return Err(invalid(format!(
            "[audience] is only for models at sql/{}/{AUDIENCE_PREFIX}<name>.sql",
            AUDIENCE_FOLDER.join("/")
        )));
    }
    if contact_fields(&audience.purpose).is_none() {
        return Err(invalid(format!(
            "audience.purpose: unknown purpose `{}`; use one of {}",
            audience.purpose,
            purpose_names()
        )));
    }
    settings.tests.sql.push(SqlTest {
        name: format!("consent({})", audience.purpose),
        query: format!(
            "SELECT a.unified_id FROM {name} AS a \
             LEFT JOIN {CONSENT_TABLE} AS c ON c.unified_id = a.unified_id AND c.purpose = '{}' \
             WHERE c.granted IS NOT TRUE",
            audience.purpose
        ),
    });
    Ok(())
}

fn purpose_names() -> String {
    PURPOSES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_folder_and_names() {
        assert!(in_audience_folder(Path::new(
            "marts/audiences/audience_x.sql"
        )));
        assert!(!in_audience_folder(Path::new("marts/audience_x.sql")));
        assert!(!in_audience_folder(Path::new("marts/audiences")));
        let model = ModelName::new("marts", "audience_win_back");
        assert_eq!(export_name(&model), "win_back");
        assert_eq!(contact_fields("sms_marketing"), Some(&["phone"][..]));
        assert_eq!(contact_fields("spam"), None);
    }
}
