//! The `[attribution]` section of `cdphub.toml`: how journeys are cut, how touchpoints are
//! grouped into channels, what counts as a conversion and which models run.

use cdphub_attribution::{
    AttributionConfig, AttributionError, MarkovConfig, Model, PositionWeights, ShapleyConfig,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{FunctionError, Result};

/// Longest lookback window, in days (ten years).
pub const MAX_LOOKBACK_DAYS: u32 = 3650;

/// What a touchpoint's channel is when no channel rule matches it.
pub const UNASSIGNED_CHANNEL: &str = "unassigned";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AttributionSettings {
    /// Touchpoints older than this many days before a conversion are not part of its journey.
    pub lookback_days: u32,
    /// Most touchpoints kept per journey: the ones closest to its end.
    pub max_steps: u32,
    /// Whether consecutive touchpoints on the same channel count as one (the latest).
    pub collapse_repeats: bool,
    /// Models computed into the marts, in this order.
    pub models: Vec<String>,
    /// Which orders count as conversions.
    pub conversion: ConversionRule,
    /// Channel grouping, first matching rule wins; see [`default_channel_rules`].
    pub channel_rules: Vec<ChannelRule>,
    /// The channel `last_non_direct` skips.
    pub direct_channel: String,
    /// Half-life of `time_decay`, in days.
    pub half_life_days: f64,
    /// Shares of the first, middle and last touchpoints in `position_based`.
    pub position_weights: PositionWeights,
    pub markov: MarkovConfig,
    pub shapley: ShapleyConfig,
}

impl Default for AttributionSettings {
    fn default() -> Self {
        let models = AttributionConfig::default();
        Self {
            lookback_days: 30,
            max_steps: 20,
            collapse_repeats: true,
            models: Model::NAMES.iter().map(ToString::to_string).collect(),
            conversion: ConversionRule::default(),
            channel_rules: default_channel_rules(),
            direct_channel: models.direct_channel,
            half_life_days: models.half_life_days,
            position_weights: models.position_weights,
            markov: models.markov,
            shapley: models.shapley,
        }
    }
}

/// Orders that count as conversions: all conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConversionRule {
    /// Accepted order statuses (compared trimmed and case-insensitively).
    pub statuses: Vec<String>,
    /// Accepted order channels (`store`, `web`, `app`); empty accepts every channel.
    pub order_channels: Vec<String>,
    /// Smallest revenue of a conversion.
    pub min_revenue: f64,
}

impl Default for ConversionRule {
    fn default() -> Self {
        Self {
            statuses: vec!["completed".to_string()],
            order_channels: Vec::new(),
            min_revenue: 0.0,
        }
    }
}

/// One channel grouping rule: each condition given is a regular expression, matched
/// case-insensitively against the touchpoint's value (a missing value reads as `""`). A rule
/// matches when all its conditions do; a rule without conditions matches every touchpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChannelRule {
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

const SEARCH_ENGINES: &str = r"(^|[/.])(google|bing|yahoo|duckduckgo|qwant|ecosia|baidu|yandex)\.";
const SOCIAL_SITES: &str =
    r"(^|[/.])(facebook|instagram|tiktok|linkedin|pinterest|twitter|x|youtube|reddit|snapchat)\.";
const SOCIAL_SOURCES: &str =
    r"^(facebook|fb|instagram|ig|meta|tiktok|linkedin|pinterest|twitter|x|snapchat|youtube)$";
const PAID_MEDIUMS: &str = r"^(cpc|ppc|cpm|paid.*)$";

/// The default grouping (after GA4's default channel group), first match wins:
/// email opens and clicks; paid social, paid search, display and affiliate by UTM medium
/// (paid social also by a paid medium from a social source); email by UTM medium or source;
/// organic search and organic social by medium or referrer; referral for any other referrer;
/// direct for the rest.
pub fn default_channel_rules() -> Vec<ChannelRule> {
    let rule = |channel: &str,
                kind: Option<&str>,
                source: Option<&str>,
                medium: Option<&str>,
                referrer: Option<&str>| {
        ChannelRule {
            channel: channel.to_string(),
            kind: kind.map(str::to_string),
            source: source.map(str::to_string),
            medium: medium.map(str::to_string),
            referrer: referrer.map(str::to_string),
        }
    };
    vec![
        rule("email", Some("^email_"), None, None, None),
        rule(
            "paid_social",
            None,
            None,
            Some(r"^(paid[-_ ]?social|social[-_ ]?paid)$"),
            None,
        ),
        rule(
            "paid_social",
            None,
            Some(SOCIAL_SOURCES),
            Some(PAID_MEDIUMS),
            None,
        ),
        rule(
            "paid_search",
            None,
            None,
            Some(r"^(cpc|ppc|paid[-_ ]?search|sem)$"),
            None,
        ),
        rule(
            "display",
            None,
            None,
            Some(r"^(display|banner|cpm|programmatic)$"),
            None,
        ),
        rule("affiliate", None, None, Some(r"^affiliates?$"), None),
        rule("email", None, None, Some(r"^e[-_ ]?mail$"), None),
        rule(
            "email",
            None,
            Some(r"^(newsletter|e[-_ ]?mail)$"),
            None,
            None,
        ),
        rule("organic_search", None, None, Some("^organic$"), None),
        rule("organic_search", None, None, None, Some(SEARCH_ENGINES)),
        rule(
            "organic_social",
            None,
            None,
            Some(r"^(social|social[-_ ]?(media|network)|sm)$"),
            None,
        ),
        rule("organic_social", None, None, None, Some(SOCIAL_SITES)),
        rule("referral", None, None, Some("^referral$"), None),
        rule("referral", None, None, None, Some(".")),
        rule("direct", None, None, None, None),
    ]
}

/// The section checked: parsed models, the crate's model parameters and compiled rules.
#[derive(Debug, Clone)]
pub struct CompiledAttribution {
    pub settings: AttributionSettings,
    pub models: Vec<Model>,
    pub model_config: AttributionConfig,
    pub channel_rules: Vec<CompiledRule>,
}

/// A channel rule with its conditions compiled: kind, source, medium, referrer.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub channel: String,
    pub conditions: [Option<Regex>; 4],
}

impl CompiledRule {
    /// Whether the rule matches; `values` are kind, source, medium and referrer.
    pub fn matches(&self, values: [&str; 4]) -> bool {
        self.conditions
            .iter()
            .zip(values)
            .all(|(condition, value)| condition.as_ref().is_none_or(|re| re.is_match(value)))
    }
}

impl AttributionSettings {
    /// The model parameters as the attribution crate takes them.
    pub fn model_config(&self) -> AttributionConfig {
        AttributionConfig {
            direct_channel: self.direct_channel.clone(),
            half_life_days: self.half_life_days,
            position_weights: self.position_weights,
            markov: self.markov,
            shapley: self.shapley,
        }
    }

    /// Checks the whole section; errors name `origin` (the config file) and the key.
    pub fn compile(&self, origin: &str) -> Result<CompiledAttribution> {
        let invalid = |key: &str, message: String| FunctionError::Config {
            key: format!("attribution.{key}"),
            origin: origin.to_string(),
            message,
        };
        if !(1..=MAX_LOOKBACK_DAYS).contains(&self.lookback_days) {
            return Err(invalid(
                "lookback-days",
                format!("must be at least 1 day and at most {MAX_LOOKBACK_DAYS}, such as 30"),
            ));
        }
        if self.max_steps == 0 {
            return Err(invalid(
                "max-steps",
                "keep at least 1 touchpoint per journey, such as 20".into(),
            ));
        }
        let model_config = self.model_config();
        model_config.validate().map_err(|error| {
            let key = match &error {
                AttributionError::InvalidHalfLife { .. } => "half-life-days",
                AttributionError::InvalidPositionWeights { .. } => "position-weights",
                AttributionError::ZeroMaxSweeps => "markov.max-sweeps",
                AttributionError::EmptyDirectChannel => "direct-channel",
                _ => "",
            };
            invalid(key, error.to_string())
        })?;
        if self.models.is_empty() {
            return Err(invalid(
                "models",
                format!("list at least one model, from {}", Model::NAMES.join(", ")),
            ));
        }
        let mut models = Vec::with_capacity(self.models.len());
        for name in &self.models {
            let model: Model = name
                .parse()
                .map_err(|e: AttributionError| invalid("models", e.to_string()))?;
            if models.contains(&model) {
                return Err(invalid("models", format!("`{name}` is listed twice")));
            }
            models.push(model);
        }
        if self.conversion.statuses.is_empty() {
            return Err(invalid(
                "conversion.statuses",
                "list at least one order status, such as [\"completed\"]".into(),
            ));
        }
        if !(self.conversion.min_revenue.is_finite()) {
            return Err(invalid(
                "conversion.min-revenue",
                "must be a finite amount, such as 0".into(),
            ));
        }
        let mut channel_rules = Vec::with_capacity(self.channel_rules.len());
        for (index, rule) in self.channel_rules.iter().enumerate() {
            let key = |field: &str| format!("channel-rules[{index}].{field}");
            if rule.channel.trim().is_empty() {
                return Err(invalid(&key("channel"), "name the channel".into()));
            }
            let fields = [
                ("kind", &rule.kind),
                ("source", &rule.source),
                ("medium", &rule.medium),
                ("referrer", &rule.referrer),
            ];
            let mut conditions = [None, None, None, None];
            for (slot, (field, pattern)) in conditions.iter_mut().zip(fields) {
                if let Some(pattern) = pattern {
                    let regex = Regex::new(&format!("(?i){pattern}")).map_err(|e| {
                        invalid(
                            &key(field),
                            format!("`{pattern}` is not a valid regular expression: {e}"),
                        )
                    })?;
                    *slot = Some(regex);
                }
            }
            channel_rules.push(CompiledRule {
                channel: rule.channel.clone(),
                conditions,
            });
        }
        Ok(CompiledAttribution {
            settings: self.clone(),
            models,
            model_config,
            channel_rules,
        })
    }
}

impl CompiledAttribution {
    /// The channel of a touchpoint: the first rule that matches, else [`UNASSIGNED_CHANNEL`].
    pub fn channel_of(&self, values: [&str; 4]) -> &str {
        self.channel_rules
            .iter()
            .find(|rule| rule.matches(values))
            .map_or(UNASSIGNED_CHANNEL, |rule| rule.channel.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<CompiledAttribution> {
        let settings: AttributionSettings = toml::from_str(text).unwrap();
        settings.compile("cdphub.toml")
    }

    fn error(text: &str) -> String {
        compile(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_compile_and_run_every_model() {
        let compiled = compile("").unwrap();
        assert_eq!(compiled.models.len(), Model::NAMES.len());
        assert_eq!(compiled.settings.lookback_days, 30);
        assert_eq!(compiled.model_config, AttributionConfig::default());
    }

    #[test]
    fn default_grouping_covers_the_usual_sources() {
        let compiled = compile("").unwrap();
        // (kind, source, medium, referrer) -> channel
        let cases = [
            (["email_open", "", "", ""], "email"),
            (["visit", "google", "cpc", "google.com"], "paid_search"),
            (
                ["visit", "facebook", "paid_social", "facebook.com"],
                "paid_social",
            ),
            (["visit", "instagram", "CPC", ""], "paid_social"),
            (["visit", "criteo", "display", "lemonde.fr"], "display"),
            (["visit", "awin", "affiliate", "ma-reduc.com"], "affiliate"),
            (["visit", "newsletter", "email", ""], "email"),
            (
                ["visit", "", "", "https://www.google.fr/"],
                "organic_search",
            ),
            (["visit", "", "", "instagram.com"], "organic_social"),
            (["visit", "", "", "https://t.co/x"], "referral"),
            (["visit", "", "", "blog-mode.fr"], "referral"),
            (["visit", "", "", ""], "direct"),
        ];
        for (values, channel) in cases {
            assert_eq!(compiled.channel_of(values), channel, "{values:?}");
        }
    }

    #[test]
    fn rules_replace_the_defaults_and_unmatched_is_unassigned() {
        let compiled = compile(
            "[[channel-rules]]\nchannel = \"partners\"\nsource = \"^partner-\"\nmedium = \"^referral$\"\n",
        )
        .unwrap();
        assert_eq!(
            compiled.channel_of(["visit", "Partner-A", "referral", ""]),
            "partners"
        );
        assert_eq!(
            compiled.channel_of(["visit", "partner-a", "cpc", ""]),
            UNASSIGNED_CHANNEL
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let cases = [
            (
                "models = [\"linear\", \"u_shaped\"]",
                "attribution.models",
                "u_shaped",
            ),
            (
                "models = [\"linear\", \"LINEAR\"]",
                "attribution.models",
                "listed twice",
            ),
            ("models = []", "attribution.models", "at least one"),
            (
                "models = [\"markov_4\"]",
                "attribution.models",
                "Markov order 4",
            ),
            (
                "position-weights = { first = 0.5, middle = 0.2, last = 0.4 }",
                "attribution.position-weights",
                "do not sum to 1",
            ),
            (
                "half-life-days = -3",
                "attribution.half-life-days",
                "positive",
            ),
            (
                "lookback-days = 0",
                "attribution.lookback-days",
                "at least 1",
            ),
            (
                "lookback-days = 5000",
                "attribution.lookback-days",
                "at most 3650",
            ),
            ("max-steps = 0", "attribution.max-steps", "at least 1"),
            (
                "conversion = { statuses = [] }",
                "attribution.conversion.statuses",
                "at least one",
            ),
            (
                "[[channel-rules]]\nchannel = \"x\"\nreferrer = \"(\"",
                "attribution.channel-rules[0].referrer",
                "not a valid regular expression",
            ),
            (
                "markov = { max-sweeps = 0 }",
                "attribution.markov.max-sweeps",
                "sweep",
            ),
        ];
        for (text, key, problem) in cases {
            let message = error(text);
            assert!(message.starts_with("cdphub.toml: "), "{message}");
            assert!(message.contains(key), "{text}: {message}");
            assert!(message.contains(problem), "{text}: {message}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = toml::from_str::<AttributionSettings>("look-back-days = 3")
            .unwrap_err()
            .to_string();
        assert!(error.contains("look-back-days"), "{error}");
    }
}
