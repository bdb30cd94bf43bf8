//! The `[identity]` section of `cdphub.toml`: how identifiers are cleaned and stitched.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use crate::cleaning::parse_region;
use crate::error::{FunctionError, Result};

/// Identifier types in their default priority order (strongest first).
pub const DEFAULT_PRIORITY: [&str; 6] = [
    "customer_id",
    "loyalty_id",
    "email",
    "phone",
    "anonymous_id",
    "device_id",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdentityConfig {
    /// Region for phone numbers written without a country code (ISO 3166, e.g. "FR").
    #[serde(default = "default_region")]
    pub default_region: String,
    #[serde(default)]
    pub email: EmailRules,
    /// Identifier types, strongest first. When a limit would break, the link through the
    /// weaker identifier is refused. Types not listed rank after all listed ones.
    #[serde(default = "default_priority")]
    pub priority: Vec<String>,
    /// Most distinct values of a type that one person may hold.
    #[serde(default = "default_limits")]
    pub limits: BTreeMap<String, u32>,
    /// Junk identifiers per type (`"*"` applies to every type), never used to link.
    #[serde(default)]
    pub blocklist: BTreeMap<String, Blocklist>,
    /// Source order for the `source-priority` survivorship rule, most trusted first.
    #[serde(default)]
    pub source_priority: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            default_region: default_region(),
            email: EmailRules::default(),
            priority: default_priority(),
            limits: default_limits(),
            blocklist: BTreeMap::new(),
            source_priority: Vec::new(),
        }
    }
}

fn default_region() -> String {
    "FR".to_string()
}

fn default_priority() -> Vec<String> {
    DEFAULT_PRIORITY.iter().map(ToString::to_string).collect()
}

fn default_limits() -> BTreeMap<String, u32> {
    BTreeMap::from([("customer_id".to_string(), 1)])
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmailRules {
    /// `jean+promo@x.fr` is `jean@x.fr`.
    #[serde(default = "yes")]
    pub strip_plus_tags: bool,
    /// `j.ean@gmail.com` is `jean@gmail.com` (Gmail ignores dots).
    #[serde(default = "yes")]
    pub strip_gmail_dots: bool,
}

impl Default for EmailRules {
    fn default() -> Self {
        Self {
            strip_plus_tags: true,
            strip_gmail_dots: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Blocklist {
    /// Exact normalised values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Regular expressions matched against the normalised value.
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// The rules the stitcher applies, checked and compiled.
#[derive(Debug, Clone)]
pub struct StitchRules {
    pub priority: Vec<String>,
    pub limits: BTreeMap<String, u32>,
    blocked_values: BTreeMap<String, Vec<String>>,
    blocked_patterns: BTreeMap<String, Vec<Regex>>,
}

/// The blocklist of one identifier type, from [`StitchRules::blocklist_of`].
#[derive(Debug)]
pub struct TypeBlocklist<'a> {
    entries: Vec<BlocklistEntry<'a>>,
}

#[derive(Debug)]
struct BlocklistEntry<'a> {
    /// The config key it came from (the type, or `"*"`).
    key: String,
    values: std::collections::HashSet<&'a str>,
    /// Bit `n` is set when some blocked value is `n` bytes long (bit 63: 63 or more), so
    /// most values skip the set lookup.
    value_lengths: u64,
    patterns: &'a [Regex],
}

/// The bit of a value length in [`BlocklistEntry::value_lengths`].
fn length_bit(value: &str) -> u64 {
    1 << value.len().min(63)
}

impl TypeBlocklist<'_> {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why `value` is junk, if it is.
    pub fn reason(&self, value: &str) -> Option<String> {
        self.entries.iter().find_map(|entry| {
            if entry.value_lengths & length_bit(value) != 0 && entry.values.contains(value) {
                return Some(format!(
                    "blocklisted value (identity.blocklist.{})",
                    entry.key
                ));
            }
            entry.patterns.iter().find(|p| p.is_match(value)).map(|p| {
                format!(
                    "blocklisted pattern `{}` (identity.blocklist.{})",
                    p.as_str(),
                    entry.key
                )
            })
        })
    }
}

/// Matches every identifier type in a blocklist.
pub const ANY_TYPE: &str = "*";

impl StitchRules {
    /// Checks the section; `origin` names where it came from for error messages.
    pub fn compile(config: &IdentityConfig, origin: &str) -> Result<Self> {
        let invalid = |key: &str, message: String| FunctionError::Config {
            key: format!("identity.{key}"),
            origin: origin.to_string(),
            message,
        };
        if parse_region(&config.default_region).is_none() {
            return Err(invalid(
                "default-region",
                format!(
                    "`{}` is not an ISO 3166 region code such as \"FR\"",
                    config.default_region
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for id_type in &config.priority {
            if !seen.insert(id_type) {
                return Err(invalid("priority", format!("`{id_type}` is listed twice")));
            }
        }
        for (id_type, limit) in &config.limits {
            if *limit == 0 {
                return Err(invalid(
                    &format!("limits.{id_type}"),
                    "a limit must be at least 1 (remove the key for no limit)".to_string(),
                ));
            }
        }
        let mut blocked_values = BTreeMap::new();
        let mut blocked_patterns = BTreeMap::new();
        for (id_type, list) in &config.blocklist {
            blocked_values.insert(id_type.clone(), list.values.clone());
            let mut compiled = Vec::new();
            for pattern in &list.patterns {
                let regex = Regex::new(pattern).map_err(|e| {
                    invalid(
                        &format!("blocklist.{id_type}.patterns"),
                        format!("`{pattern}` is not a valid regular expression: {e}"),
                    )
                })?;
                compiled.push(regex);
            }
            blocked_patterns.insert(id_type.clone(), compiled);
        }
        Ok(Self {
            priority: config.priority.clone(),
            limits: config.limits.clone(),
            blocked_values,
            blocked_patterns,
        })
    }

    /// Rank of a type: its position in the priority list, unknown types last.
    pub fn rank(&self, id_type: &str) -> usize {
        self.priority
            .iter()
            .position(|t| t == id_type)
            .unwrap_or(self.priority.len())
    }

    /// Why a value is junk, if it is.
    pub fn blocked(&self, id_type: &str, value: &str) -> Option<String> {
        self.blocklist_of(id_type).reason(value)
    }

    /// The blocklist entries that apply to one identifier type: its own, then `"*"`'s.
    /// Looked up once per type, so checking millions of values is only the matching.
    pub fn blocklist_of(&self, id_type: &str) -> TypeBlocklist<'_> {
        let entries = [id_type, ANY_TYPE]
            .into_iter()
            .filter_map(|key| {
                let values = self.blocked_values.get(key).map_or(&[][..], Vec::as_slice);
                let patterns = self
                    .blocked_patterns
                    .get(key)
                    .map_or(&[][..], Vec::as_slice);
                (!values.is_empty() || !patterns.is_empty()).then(|| BlocklistEntry {
                    key: key.to_string(),
                    values: values.iter().map(String::as_str).collect(),
                    value_lengths: values.iter().fold(0, |bits, v| bits | length_bit(v)),
                    patterns,
                })
            })
            .collect();
        TypeBlocklist { entries }
    }

    /// Overrides from a JSON object given to `stitch(...)`, with the same keys as the
    /// config section (`{"limits": {"email": 1}, "blocklist": {...}}`).
    pub fn with_overrides(base: &IdentityConfig, json: &str) -> Result<Self> {
        let mut merged = serde_json::to_value(ConfigView::from(base)).expect("serialisable");
        let overrides: serde_json::Value =
            serde_json::from_str(json).map_err(|e| FunctionError::Config {
                key: "stitch rules".to_string(),
                origin: "the stitch() call".to_string(),
                message: format!("not a JSON object: {e}"),
            })?;
        let Some(fields) = overrides.as_object() else {
            return Err(FunctionError::Config {
                key: "stitch rules".to_string(),
                origin: "the stitch() call".to_string(),
                message: "expected a JSON object such as {\"limits\": {\"email\": 1}}".into(),
            });
        };
        for (key, value) in fields {
            merged[key] = value.clone();
        }
        let config: IdentityConfig =
            serde_json::from_value(merged).map_err(|e| FunctionError::Config {
                key: "stitch rules".to_string(),
                origin: "the stitch() call".to_string(),
                message: e.to_string(),
            })?;
        Self::compile(&config, "the stitch() call")
    }
}

/// The config as JSON, for merging call-site overrides.
#[derive(serde::Serialize)]
#[serde(rename_all = "kebab-case")]
struct ConfigView {
    default_region: String,
    priority: Vec<String>,
    limits: BTreeMap<String, u32>,
    blocklist: BTreeMap<String, serde_json::Value>,
    source_priority: Vec<String>,
}

impl From<&IdentityConfig> for ConfigView {
    fn from(config: &IdentityConfig) -> Self {
        Self {
            default_region: config.default_region.clone(),
            priority: config.priority.clone(),
            limits: config.limits.clone(),
            blocklist: config
                .blocklist
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::json!({"values": v.values, "patterns": v.patterns}),
                    )
                })
                .collect(),
            source_priority: config.source_priority.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> IdentityConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn blocklists_match_values_patterns_and_any_type() {
        let rules = StitchRules::compile(
            &config(
                r#"
                [blocklist.email]
                values = ["test@test.com"]
                [blocklist.phone]
                patterns = ['^\+33[67]?0+$']
                [blocklist."*"]
                values = ["unknown"]
                "#,
            ),
            "test",
        )
        .unwrap();
        assert!(rules.blocked("email", "test@test.com").is_some());
        assert!(rules.blocked("email", "jean@test.com").is_none());
        assert!(rules.blocked("phone", "+33600000000").is_some());
        assert!(rules.blocked("phone", "+33612345678").is_none());
        assert!(rules.blocked("device_id", "unknown").is_some());
        assert_eq!(rules.rank("customer_id"), 0);
        assert_eq!(rules.rank("shoe_size"), DEFAULT_PRIORITY.len());
    }

    #[test]
    fn bad_rules_name_the_key() {
        let bad_pattern = config("[blocklist.email]\npatterns = ['(']");
        let err = StitchRules::compile(&bad_pattern, "cdphub.toml").unwrap_err();
        assert!(
            err.to_string()
                .contains("identity.blocklist.email.patterns"),
            "{err}"
        );
        let bad_region = config("default-region = 'Narnia'");
        let err = StitchRules::compile(&bad_region, "cdphub.toml").unwrap_err();
        assert!(err.to_string().contains("identity.default-region"), "{err}");
        let zero = config("[limits]\nemail = 0");
        assert!(StitchRules::compile(&zero, "x").is_err());
    }

    #[test]
    fn call_site_overrides_replace_keys() {
        let base = IdentityConfig::default();
        let rules = StitchRules::with_overrides(&base, r#"{"limits": {"email": 1}}"#).unwrap();
        assert_eq!(rules.limits.get("email"), Some(&1));
        assert_eq!(rules.limits.get("customer_id"), None);
        let err = StitchRules::with_overrides(&base, r#"{"limit": 1}"#).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }
}
