//! The `[analytics]` section of `cdphub.toml` and `analysis_date()`, the date the customer
//! marts (RFM, lifetime value, audiences) are computed as of.
//!
//! `analysis_date()` returns `[analytics] as-of`, or NULL when it is not set; the models then
//! fall back to the day after the last order:
//!
//! ```sql
//! SELECT coalesce(analysis_date(), CAST(max(ordered_at) + INTERVAL '1 day' AS DATE)) FROM staging.orders
//! ```
//!
//! Days are UTC days: an order placed at 23:30 in Paris on 1 March (22:30 UTC) is a
//! 1 March order; one placed at 00:30 on 2 March in Paris (23:30 UTC on 1 March) is too.
//! The analysis date is a whole day: observation ends at 00:00 UTC that day, so orders on
//! the analysis date itself and later are not counted.

use std::fmt;

use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// `[analytics]`: settings of the customer marts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AnalyticsConfig {
    /// The analysis date (`2026-06-30`, quoted or not): recency and customer ages are
    /// measured to it and orders from that day on are ignored. Default: the day after the
    /// last order.
    #[serde(default, deserialize_with = "deserialize_date")]
    pub as_of: Option<NaiveDate>,
}

/// Parses `YYYY-MM-DD`, saying what was wrong.
pub fn parse_as_of(text: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|e| {
        format!("`{text}` is not a date ({e}); write it as YYYY-MM-DD, e.g. as-of = \"2026-06-30\"")
    })
}

/// Accepts a quoted date or a TOML date literal (which toml hands over as a one-entry map).
fn deserialize_date<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<NaiveDate>, D::Error> {
    struct DateVisitor;

    impl<'de> Visitor<'de> for DateVisitor {
        type Value = Option<NaiveDate>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a date such as 2026-06-30")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<Self::Value, E> {
            parse_as_of(text).map(Some).map_err(E::custom)
        }

        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let Some((_, text)) = map.next_entry::<String, String>()? else {
                return Err(de::Error::custom("expected a date such as 2026-06-30"));
            };
            if text.contains(['T', ' ', ':']) {
                return Err(de::Error::custom(format!(
                    "`{text}` is a date-time; as-of is a whole (UTC) day such as 2026-06-30"
                )));
            }
            self.visit_str(&text)
        }
    }

    deserializer.deserialize_any(DateVisitor)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AnalysisDate {
    /// Days since 1970-01-01, as Arrow's Date32.
    day: Option<i32>,
    signature: Signature,
}

impl ScalarUDFImpl for AnalysisDate {
    fn name(&self) -> &str {
        "analysis_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Date32(self.day)))
    }
}

/// `analysis_date()` returning `as_of` (NULL for none).
pub fn analysis_date_function(as_of: Option<NaiveDate>) -> ScalarUDF {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let day = as_of.map(|d| i32::try_from((d - epoch).num_days()).expect("a date in Date32 range"));
    ScalarUDF::new_from_impl(AnalysisDate {
        day,
        signature: Signature::nullary(Volatility::Immutable),
    })
}

/// Registers `analysis_date()` from the `[analytics]` section (replacing the default NULL one).
pub fn register(ctx: &SessionContext, config: &AnalyticsConfig) {
    ctx.register_udf(analysis_date_function(config.as_of));
    // `first(x ORDER BY ...)`, DuckDB's name for the ordered first_value aggregate, so a
    // mart picks "the value of the best row" in one aggregate in either engine.
    let first_value = datafusion::functions_aggregate::first_last::first_value_udaf();
    ctx.register_udaf(first_value.as_ref().clone().with_aliases(["first"]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        analytics: AnalyticsConfig,
    }

    fn parse(text: &str) -> std::result::Result<AnalyticsConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.analytics)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn as_of_is_a_quoted_or_literal_date() {
        let date = NaiveDate::from_ymd_opt(2026, 6, 30);
        assert_eq!(
            parse("[analytics]\nas-of = \"2026-06-30\"").unwrap().as_of,
            date
        );
        assert_eq!(
            parse("[analytics]\nas-of = 2026-06-30").unwrap().as_of,
            date
        );
        assert_eq!(parse("[analytics]").unwrap().as_of, None);
    }

    #[test]
    fn bad_as_of_says_what_a_date_looks_like() {
        let err = parse("[analytics]\nas-of = \"2026-13-01\"").unwrap_err();
        assert!(err.contains("as-of") && err.contains("YYYY-MM-DD"), "{err}");
        let err = parse("[analytics]\nas-of = 2026-06-30T10:00:00").unwrap_err();
        assert!(err.contains("whole (UTC) day"), "{err}");
        let err = parse("[analytics]\nas-of = 20260630").unwrap_err();
        assert!(err.contains("a date such as 2026-06-30"), "{err}");
        let err = parse("[analytics]\nasof = \"2026-06-30\"").unwrap_err();
        assert!(err.contains("asof"), "{err}");
    }
}
