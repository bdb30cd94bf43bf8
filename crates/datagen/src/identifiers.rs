//! Identifier formats, the messy variants sources produce, and the normalisers that define
//! when two spellings are the same identifier (used to compute the ground truth).

use rand_pcg::Pcg64;

use crate::reference::GMAIL_TAGS;
use crate::rng::{between, pick, pick_weighted};

/// Placeholder emails cashiers type when a customer gives none; shared by many people.
pub const JUNK_EMAILS: [&str; 3] = ["test@test.com", "noemail@noemail.com", "aucun@aucun.fr"];
/// Placeholder phones typed at the till, as they appear in the raw data.
pub const JUNK_PHONES: [&str; 3] = ["0000000000", "0600000000", "+33000000000"];

/// Email normalisation used by the truth: trim, lower-case, and for gmail.com /
/// googlemail.com drop the dots and any "+tag" of the local part.
pub fn normalize_email(raw: &str) -> String {
    let lower = raw.trim().to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, domain)) if domain == "gmail.com" || domain == "googlemail.com" => {
            let untagged = local.split('+').next().unwrap_or(local);
            let undotted: String = untagged.chars().filter(|c| *c != '.').collect();
            format!("{undotted}@{domain}")
        }
        _ => lower,
    }
}

/// Phone normalisation used by the truth: E.164 with France (+33) as the default region.
/// "06 12 34 56 78", "0033 6 12 34 56 78" and "+33612345678" all give "+33612345678".
pub fn normalize_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if raw.trim_start().starts_with('+') {
        format!("+{digits}")
    } else if digits.len() == 10 && digits.starts_with('0') {
        // A national number ("0612345678"; also the "0000000000" placeholder).
        format!("+33{}", &digits[1..])
    } else if let Some(international) = digits.strip_prefix("00") {
        format!("+{international}")
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("+33{national}")
    } else {
        format!("+{digits}")
    }
}

/// Whether an already-normalised email is a cashier placeholder.
pub fn is_junk_email(normalized: &str) -> bool {
    JUNK_EMAILS.contains(&normalized)
}

/// Whether an already-normalised phone is a cashier placeholder.
pub fn is_junk_phone(normalized: &str) -> bool {
    normalized == "+33000000000" || normalized == "+33600000000"
}

// ---------------------------------------------------------------------------------------
// Canonical identifier values. Numbers are spread by bijections of the person index so
// that they look random yet never collide between two persons.

/// `(a * i + b) mod n`, a bijection on `0..n` when `a` and `n` are coprime.
fn affine_permutation(i: u64, n: u64, a: u64, b: u64) -> u64 {
    ((u128::from(i) * u128::from(a) + u128::from(b)) % u128::from(n)) as u64
}

/// Mobile numbers per prefix (06 / 07): the 8 trailing digits are never all zero, so no
/// person gets the "06 00 00 00 00" placeholder.
const MOBILES_PER_PREFIX: u64 = 99_999_999;

/// The national significant number (9 digits, 6xxxxxxxx or 7xxxxxxxx) of a person's mobile.
pub(crate) fn person_phone(seed_offset: u64, person: u32) -> u32 {
    const MULTIPLIER: u64 = 123_456_791; // coprime with 2 * 99_999_999
    let n = 2 * MOBILES_PER_PREFIX;
    let v = affine_permutation(u64::from(person), n, MULTIPLIER, seed_offset % n);
    let (prefix, rest) = (v / MOBILES_PER_PREFIX, v % MOBILES_PER_PREFIX);
    (600_000_000 + prefix * 100_000_000 + rest + 1) as u32
}

/// A person's loyalty card number (9 digits).
pub(crate) fn person_loyalty_number(seed_offset: u64, person: u32) -> u64 {
    const MULTIPLIER: u64 = 387_420_491; // coprime with 900_000_000
    let n = 900_000_000;
    100_000_000 + affine_permutation(u64::from(person), n, MULTIPLIER, seed_offset % n)
}

/// Kinds of scrambled 64-bit identifiers; the kind is part of the scrambled input so two
/// kinds never share a value.
#[derive(Clone, Copy)]
pub(crate) enum ScrambledKind {
    Cookie = 1,
    Device = 2,
    SharedDevice = 3,
    Session = 4,
}

/// A collision-free pseudo-random id for `(kind, owner, sequence)` (owner < 2^36,
/// sequence < 2^20).
pub(crate) fn scrambled_id(key: u64, kind: ScrambledKind, owner: u32, sequence: u32) -> u64 {
    debug_assert!(sequence < (1 << 20));
    let input = ((kind as u64) << 56) | (u64::from(owner) << 20) | u64::from(sequence & 0xF_FFFF);
    crate::rng::mix64(input ^ key)
}

/// The phone formats French systems hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PhoneFormat {
    Spaced,
    Compact,
    Dotted,
    E164,
    E164Spaced,
    Intl00,
    Intl00Spaced,
}

pub(crate) const PHONE_FORMATS: [PhoneFormat; 7] = [
    PhoneFormat::Spaced,
    PhoneFormat::Compact,
    PhoneFormat::Dotted,
    PhoneFormat::E164,
    PhoneFormat::E164Spaced,
    PhoneFormat::Intl00,
    PhoneFormat::Intl00Spaced,
];

/// Formats a 9-digit national significant number (e.g. 612345678).
pub(crate) fn format_phone(national: u32, format: PhoneFormat) -> String {
    let d = format!("{national:09}");
    let pairs = format!("{} {} {} {}", &d[1..3], &d[3..5], &d[5..7], &d[7..9]);
    match format {
        PhoneFormat::Spaced => format!("0{} {pairs}", &d[..1]),
        PhoneFormat::Compact => format!("0{d}"),
        PhoneFormat::Dotted => format!("0{}.{}", &d[..1], pairs.replace(' ', ".")),
        PhoneFormat::E164 => format!("+33{d}"),
        PhoneFormat::E164Spaced => format!("+33 {} {pairs}", &d[..1]),
        PhoneFormat::Intl00 => format!("0033{d}"),
        PhoneFormat::Intl00Spaced => format!("0033 {} {pairs}", &d[..1]),
    }
}

/// The phone as some system typed it: the format is drawn from `formats` by weight.
pub(crate) fn typed_phone(
    rng: &mut Pcg64,
    national: u32,
    formats: &[(PhoneFormat, f64)],
) -> String {
    format_phone(national, *pick_weighted(rng, formats))
}

/// Formats typed by hand in stores and forms (national styles dominate).
pub(crate) const HAND_TYPED_PHONES: [(PhoneFormat, f64); 7] = [
    (PhoneFormat::Spaced, 0.30),
    (PhoneFormat::Compact, 0.30),
    (PhoneFormat::Dotted, 0.12),
    (PhoneFormat::E164, 0.12),
    (PhoneFormat::E164Spaced, 0.08),
    (PhoneFormat::Intl00, 0.05),
    (PhoneFormat::Intl00Spaced, 0.03),
];

// ---------------------------------------------------------------------------------------
// Email variants.

/// How a source spells a person's email. All variants normalise to the canonical email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmailStyle {
    Exact,
    Upper,
    Capitalized,
    Padded,
    /// gmail only: dots of the local part removed.
    GmailNoDots,
    /// gmail only: an extra dot inside the local part.
    GmailExtraDot,
    /// gmail only: a "+tag" suffix on the local part.
    GmailPlusTag,
}

/// Style mix of an email typed by the customer in a form or at a till.
pub(crate) const TYPED_EMAIL_STYLES: [(EmailStyle, f64); 7] = [
    (EmailStyle::Exact, 0.68),
    (EmailStyle::Upper, 0.04),
    (EmailStyle::Capitalized, 0.09),
    (EmailStyle::Padded, 0.06),
    (EmailStyle::GmailNoDots, 0.05),
    (EmailStyle::GmailExtraDot, 0.03),
    (EmailStyle::GmailPlusTag, 0.05),
];

/// A spelling of `canonical` (lower-case) in the given style; gmail-only styles fall back
/// to the canonical spelling for other domains, where they would change the address.
pub(crate) fn email_variant(rng: &mut Pcg64, canonical: &str, style: EmailStyle) -> String {
    let Some((local, domain)) = canonical.split_once('@') else {
        return canonical.to_owned();
    };
    let gmail = domain == "gmail.com";
    match style {
        EmailStyle::Exact => canonical.to_owned(),
        EmailStyle::Upper => canonical.to_uppercase(),
        EmailStyle::Capitalized => capitalize_words(canonical),
        EmailStyle::Padded => match between(rng, 0, 2) {
            0 => format!(" {canonical}"),
            1 => format!("{canonical} "),
            _ => format!("  {canonical} "),
        },
        EmailStyle::GmailNoDots if gmail => format!("{}@{domain}", local.replace('.', "")),
        EmailStyle::GmailExtraDot if gmail => format!("{}@{domain}", insert_dot(rng, local)),
        EmailStyle::GmailPlusTag if gmail => {
            let tag = pick(rng, GMAIL_TAGS);
            let local = if between(rng, 0, 1) == 0 {
                local.replace('.', "")
            } else {
                local.to_owned()
            };
            format!("{local}+{tag}@{domain}")
        }
        _ => canonical.to_owned(),
    }
}

/// A typed spelling of the email, style drawn from TYPED_EMAIL_STYLES.
pub(crate) fn typed_email(rng: &mut Pcg64, canonical: &str) -> String {
    let style = *pick_weighted(rng, &TYPED_EMAIL_STYLES);
    email_variant(rng, canonical, style)
}

/// "marie.martin@gmail.com" -> "Marie.Martin@Gmail.com".
fn capitalize_words(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start_of_word = true;
    for c in s.chars() {
        if start_of_word {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start_of_word = !c.is_ascii_alphanumeric();
    }
    out
}

/// Inserts a dot between two letters of the local part (never at an end, never doubled).
fn insert_dot(rng: &mut Pcg64, local: &str) -> String {
    let chars: Vec<char> = local.chars().collect();
    let candidates: Vec<usize> = (1..chars.len())
        .filter(|&i| chars[i - 1] != '.' && chars[i] != '.')
        .collect();
    if candidates.is_empty() {
        return local.to_owned();
    }
    let at = *pick(rng, &candidates);
    let mut out: String = chars[..at].iter().collect();
    out.push('.');
    out.extend(&chars[at..]);
    out
}

// ---------------------------------------------------------------------------------------
// Names.

/// Removes French accents and ligatures: "Hélène Lefèvre" -> "Helene Lefevre".
pub(crate) fn fold_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'à' | 'â' | 'ä' | 'á' => out.push('a'),
            'À' | 'Â' | 'Ä' | 'Á' => out.push('A'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'É' | 'È' | 'Ê' | 'Ë' => out.push('E'),
            'î' | 'ï' | 'í' => out.push('i'),
            'Î' | 'Ï' | 'Í' => out.push('I'),
            'ô' | 'ö' | 'ó' => out.push('o'),
            'Ô' | 'Ö' | 'Ó' => out.push('O'),
            'ù' | 'û' | 'ü' | 'ú' => out.push('u'),
            'Ù' | 'Û' | 'Ü' | 'Ú' => out.push('U'),
            'ç' => out.push('c'),
            'Ç' => out.push('C'),
            'ÿ' => out.push('y'),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            other => out.push(other),
        }
    }
    out
}

/// A name as it goes into an email local part: "Le Gall" -> "legall", "D'Angelo" -> "dangelo".
pub(crate) fn email_token(name: &str) -> String {
    fold_accents(name)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// How a source spells a person's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameStyle {
    Exact,
    NoAccents,
    Upper,
    Typo,
    Spaces,
}

pub(crate) fn name_variant(rng: &mut Pcg64, name: &str, style: NameStyle) -> String {
    match style {
        NameStyle::Exact => name.to_owned(),
        NameStyle::NoAccents => fold_accents(name),
        NameStyle::Upper => name.to_uppercase(),
        NameStyle::Typo => typo(rng, name),
        NameStyle::Spaces => match between(rng, 0, 2) {
            0 => format!(" {name}"),
            1 => format!("{name}  "),
            _ => name.replacen('-', " - ", 1).replacen(' ', "  ", 1) + " ",
        },
    }
}

/// A one-letter typo (swap, drop, double or replace) that always changes the name.
fn typo(rng: &mut Pcg64, name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 3 {
        return format!("{name}{}", chars.last().copied().unwrap_or('e'));
    }
    let at = between(rng, 1, chars.len() as u64 - 1) as usize;
    let mut out = chars.clone();
    match between(rng, 0, 3) {
        0 if out[at - 1] != out[at] => out.swap(at - 1, at),
        1 => {
            out.remove(at);
        }
        2 => out.insert(at, chars[at]),
        _ => {
            let replacement = if chars[at] == 'e' { 'a' } else { 'e' };
            out[at] = replacement;
        }
    }
    let result: String = out.into_iter().collect();
    if result == name {
        format!("{name}e")
    } else {
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream_rng};

    #[test]
    fn all_phone_formats_normalise_to_the_same_e164() {
        for format in PHONE_FORMATS {
            assert_eq!(
                normalize_phone(&format_phone(612_345_678, format)),
                "+33612345678",
                "{format:?}"
            );
        }
        assert_eq!(
            format_phone(612_345_678, PhoneFormat::Spaced),
            "06 12 34 56 78"
        );
        assert_eq!(
            format_phone(612_345_678, PhoneFormat::Dotted),
            "06.12.34.56.78"
        );
        assert_eq!(
            format_phone(712_345_678, PhoneFormat::E164Spaced),
            "+33 7 12 34 56 78"
        );
        assert_eq!(
            format_phone(612_345_678, PhoneFormat::Intl00Spaced),
            "0033 6 12 34 56 78"
        );
    }

    #[test]
    fn junk_phones_normalise_to_junk() {
        for raw in JUNK_PHONES {
            assert!(is_junk_phone(&normalize_phone(raw)), "{raw}");
        }
        for raw in JUNK_EMAILS {
            assert!(is_junk_email(&normalize_email(raw)), "{raw}");
        }
    }

    #[test]
    fn email_variants_normalise_to_canonical() {
        let mut rng = stream_rng(1, Stream::Catalog, 2);
        for canonical in ["marie.lefevre@gmail.com", "jean-pierre.dupont85@orange.fr"] {
            for _ in 0..200 {
                let variant = typed_email(&mut rng, canonical);
                assert_eq!(
                    normalize_email(&variant),
                    normalize_email(canonical),
                    "{variant}"
                );
            }
        }
        assert_eq!(
            normalize_email(" MarieLefevre+promo@Gmail.com "),
            "marielefevre@gmail.com"
        );
        assert_eq!(
            normalize_email("marie.lefevre+x@orange.fr"),
            "marie.lefevre+x@orange.fr"
        );
    }

    #[test]
    fn person_numbers_are_unique_and_never_placeholders() {
        let mut phones = std::collections::BTreeSet::new();
        let mut cards = std::collections::BTreeSet::new();
        for person in 0..50_000 {
            let phone = person_phone(987_654_321, person);
            assert!((600_000_001..=799_999_999).contains(&phone) && phone != 700_000_000);
            assert!(phones.insert(phone));
            assert!(cards.insert(person_loyalty_number(42, person)));
        }
    }

    #[test]
    fn names_fold_and_typo() {
        assert_eq!(
            fold_accents("Hélène Lefèvre Müller Françoise Maëlle"),
            "Helene Lefevre Muller Francoise Maelle"
        );
        assert_eq!(email_token("D'Angelo"), "dangelo");
        assert_eq!(email_token("Le Gall"), "legall");
        let mut rng = stream_rng(1, Stream::Catalog, 3);
        for _ in 0..200 {
            assert_ne!(name_variant(&mut rng, "Chloé", NameStyle::Typo), "Chloé");
        }
    }
}
