//! Identifier cleaning: the normalisers behind `normalize_email`, `normalize_phone` and
//! `normalize_name`. Garbage in gives NULL out, never an error, so one bad row cannot stop
//! a staging model.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use phonenumber::country;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::config::EmailRules;
use crate::scalar_text;

/// Trims and lower-cases; optionally drops `+tags` and Gmail's dots. Anything that is not
/// `local@domain.tld` without spaces is NULL.
pub fn normalize_email(raw: &str, rules: &EmailRules) -> Option<String> {
    let lower = raw.trim().to_lowercase();
    let (local, domain) = lower.rsplit_once('@')?;
    let valid_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || !valid_domain || local.contains('@') {
        return None;
    }
    if lower.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let is_gmail = domain == "gmail.com" || domain == "googlemail.com";
    let mut local = local.to_string();
    if rules.strip_plus_tags
        && let Some((head, _tag)) = local.split_once('+')
    {
        local = head.to_string();
    }
    let domain = if is_gmail { "gmail.com" } else { domain };
    if is_gmail && rules.strip_gmail_dots {
        local.retain(|c| c != '.');
    }
    if local.is_empty() {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

/// Parses a region code such as `FR` (ISO 3166 alpha-2, any case).
pub fn parse_region(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// E.164 (`+33612345678`) for any valid number, national numbers read in `region`;
/// NULL for anything the numbering plan does not allow.
pub fn normalize_phone(raw: &str, region: country::Id) -> Option<String> {
    let trimmed = raw.trim();
    // The phonenumber parser is lenient with letters (vanity numbers); identifiers are not.
    if trimmed.is_empty() || trimmed.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let number = phonenumber::parse(Some(region), trimmed).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// NFKC, accents removed, case folded, inner spacing collapsed: `  HÉLÈNE  Müller` and
/// `helene muller` give the same value. NULL when nothing but spaces and marks is left.
pub fn normalize_name(raw: &str) -> Option<String> {
    let compatible: String = raw.nfkc().collect();
    let unaccented: String = compatible
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .collect();
    let folded = unaccented.to_lowercase();
    let words: Vec<&str> = folded
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || !words.iter().any(|w| w.chars().any(char::is_alphanumeric)) {
        return None;
    }
    Some(words.join(" ").nfc().collect())
}

/// Which normaliser a [`CleaningFunction`] applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Cleaner {
    Email(EmailRules),
    /// The region used when the call gives none.
    Phone(country::Id),
    Name,
}

/// One SQL cleaning function. Values repeat a lot in a batch (one person's phone on
/// every order), so each batch caches its results.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CleaningFunction {
    name: &'static str,
    cleaner: Cleaner,
    signature: Signature,
}

impl CleaningFunction {
    pub fn email(rules: EmailRules) -> ScalarUDF {
        Self::udf("normalize_email", Cleaner::Email(rules), 1)
    }

    pub fn phone(default_region: country::Id) -> ScalarUDF {
        Self::udf("normalize_phone", Cleaner::Phone(default_region), 2)
    }

    pub fn name() -> ScalarUDF {
        Self::udf("normalize_name", Cleaner::Name, 1)
    }

    fn udf(name: &'static str, cleaner: Cleaner, max_args: usize) -> ScalarUDF {
        let signatures = (1..=max_args).map(TypeSignature::String).collect();
        ScalarUDF::new_from_impl(Self {
            name,
            cleaner,
            signature: Signature::one_of(signatures, Volatility::Immutable),
        })
    }

    fn clean(&self, value: &str, region: Option<&str>) -> Option<String> {
        match &self.cleaner {
            Cleaner::Email(rules) => normalize_email(value, rules),
            Cleaner::Phone(default) => {
                let region = match region {
                    Some(code) => parse_region(code)?,
                    None => *default,
                };
                normalize_phone(value, region)
            }
            Cleaner::Name => normalize_name(value),
        }
    }
}

fn as_strings(value: &ColumnarValue, rows: usize) -> Result<StringArray> {
    let array = value.to_array(rows)?;
    let utf8 = cast(&array, &DataType::Utf8)?;
    Ok(utf8
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8 gives a StringArray")
        .clone())
}

impl ScalarUDFImpl for CleaningFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(first) = args.args.first() else {
            return plan_err!("{} needs the value to clean", self.name);
        };
        // A constant region ('FR') is checked once, so a typo is an error, not all NULLs.
        if let Some(ColumnarValue::Scalar(region)) = args.args.get(1)
            && let Some(code) = scalar_text(region)
            && parse_region(&code).is_none()
        {
            return exec_err!(
                "{}: `{code}` is not a region code; use an ISO 3166 code such as 'FR' or 'BE'",
                self.name
            );
        }
        if let (ColumnarValue::Scalar(value), None | Some(ColumnarValue::Scalar(_))) =
            (first, args.args.get(1))
        {
            let region = args.args.get(1).and_then(|r| match r {
                ColumnarValue::Scalar(s) => scalar_text(s),
                ColumnarValue::Array(_) => None,
            });
            let cleaned = scalar_text(value).and_then(|v| self.clean(&v, region.as_deref()));
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(cleaned)));
        }
        let values = as_strings(first, rows)?;
        let regions = args.args.get(1).map(|r| as_strings(r, rows)).transpose()?;
        let mut cache: HashMap<(&str, Option<&str>), Option<String>> = HashMap::new();
        let mut out = StringBuilder::with_capacity(rows, values.value_data().len());
        for row in 0..rows {
            if values.is_null(row) {
                out.append_null();
                continue;
            }
            let region = regions
                .as_ref()
                .and_then(|r| (!r.is_null(row)).then(|| r.value(row)));
            let key = (values.value(row), region);
            let cleaned = cache.entry(key).or_insert_with(|| self.clean(key.0, key.1));
            out.append_option(cleaned.as_deref());
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> EmailRules {
        EmailRules::default()
    }

    #[test]
    fn emails_fold_case_space_and_gmail_variants() {
        let cases = [
            ("  Jean.Dupont@Orange.FR ", Some("jean.dupont@orange.fr")),
            (
                "j.e.a.n.dupont+soldes@gmail.com",
                Some("jeandupont@gmail.com"),
            ),
            ("JeanDupont@GoogleMail.com", Some("jeandupont@gmail.com")),
            ("marie+news@free.fr", Some("marie@free.fr")),
            ("not an email", None),
            ("a@b", None),
            ("@orange.fr", None),
            ("x@@orange.fr", None),
            ("jean dupont@orange.fr", None),
            ("+tag@gmail.com", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_email(raw, &rules()).as_deref(), expected, "{raw}");
        }
        let keep_tags = EmailRules {
            strip_plus_tags: false,
            strip_gmail_dots: false,
        };
        assert_eq!(
            normalize_email("J.D+x@gmail.com", &keep_tags).as_deref(),
            Some("j.d+x@gmail.com")
        );
    }

    #[test]
    fn french_phone_layouts_become_one_e164_value() {
        let fr = parse_region("fr").unwrap();
        for raw in [
            "06 12 34 56 78",
            "0612345678",
            "06.12.34.56.78",
            "+33612345678",
            "+33 6 12 34 56 78",
            "0033612345678",
            "0033 6 12 34 56 78",
        ] {
            assert_eq!(
                normalize_phone(raw, fr).as_deref(),
                Some("+33612345678"),
                "{raw}"
            );
        }
        for junk in ["0000000000", "+33000000000", "12", "call me", "", "06 12"] {
            assert_eq!(normalize_phone(junk, fr), None, "{junk}");
        }
        let be = parse_region("BE").unwrap();
        assert_eq!(
            normalize_phone("0470 12 34 56", be).as_deref(),
            Some("+32470123456")
        );
        assert!(parse_region("XX").is_none());
    }

    #[test]
    fn names_lose_accents_case_and_extra_spaces() {
        assert_eq!(
            normalize_name("  HÉLÈNE   Müller ").as_deref(),
            Some("helene muller")
        );
        assert_eq!(normalize_name("François").as_deref(), Some("francois"));
        // NFKC turns the ligature and full-width letters into plain ones.
        assert_eq!(normalize_name("Œuvre ＡＢ").as_deref(), Some("œuvre ab"));
        assert_eq!(normalize_name("   "), None);
        assert_eq!(normalize_name("--"), None);
    }
}
