//! The persons behind the data: who they are and their canonical identifiers.
//!
//! Built sequentially once per run because two things need the whole population: unique
//! canonical emails, and household pairs. Everything else about a person's behaviour is
//! drawn later from the person's own random stream.

use std::collections::HashSet;

use rand_pcg::Pcg64;

use crate::calendar::date;
use crate::identifiers::{
    ScrambledKind, email_token, normalize_email, person_loyalty_number, person_phone, scrambled_id,
};
use crate::reference::{
    CITIES, EMAIL_DOMAINS, FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES, STORE_CITIES,
};
use crate::rng::{
    CumulativeTable, Stream, between, chance, normal, pick, pick_weighted, stream_rng,
};

/// Share of persons holding a customer account in the CRM.
const ACCOUNT_SHARE: f64 = 0.55;
/// Share of account holders with a loyalty card.
const LOYALTY_SHARE: f64 = 0.60;
/// Share of account holders with a duplicate CRM entry.
const DUPLICATE_SHARE: f64 = 0.04;
/// Probability that persons 2k and 2k+1 form a household sharing a family tablet.
const HOUSEHOLD_PAIR_SHARE: f64 = 0.02;

#[derive(Debug)]
pub(crate) struct Person {
    pub female: bool,
    pub first_name: &'static str,
    pub last_name: &'static str,
    /// Days since the Unix epoch.
    pub birth_date: i32,
    pub city: usize,
    pub postal_code: &'static str,
    /// Index into the 40 stores of the store the person usually visits.
    pub home_store: usize,
    /// Canonical email: lower-case ASCII, unique across persons after normalisation.
    pub email: Box<str>,
    /// National significant number of the mobile (6xxxxxxxx / 7xxxxxxxx), unique.
    pub phone: u32,
    pub account: Option<Account>,
    /// The family tablet shared with the other household member, if any.
    pub shared_device: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Account {
    /// Number behind customer_id "C%08d".
    pub customer: u32,
    /// Number behind loyalty_id "LOY-%09d".
    pub loyalty: Option<u64>,
    /// The CRM holds a second, slightly different row for this customer.
    pub duplicate: bool,
}

#[derive(Debug)]
pub(crate) struct Population {
    pub persons: Vec<Person>,
}

/// Per-run keys that make identifiers depend on the seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdKeys {
    pub phone_offset: u64,
    pub loyalty_offset: u64,
    pub scramble: u64,
}

impl IdKeys {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = stream_rng(seed, Stream::Keys, 0);
        Self {
            phone_offset: between(&mut rng, 0, u64::MAX - 1),
            loyalty_offset: between(&mut rng, 0, u64::MAX - 1),
            scramble: between(&mut rng, 0, u64::MAX - 1),
        }
    }
}

impl Population {
    pub(crate) fn build(
        seed: u64,
        count: u32,
        keys: &IdKeys,
        mut on_progress: impl FnMut(u64),
    ) -> Self {
        let city_table = CumulativeTable::new(CITIES.iter().map(|c| c.weight));
        let mut taken_emails = HashSet::with_capacity(count as usize);
        let mut next_customer = 10_000u32;
        let mut persons = Vec::with_capacity(count as usize);
        for index in 0..count {
            let mut rng = stream_rng(seed, Stream::Profile, u64::from(index));
            let household = household_of(seed, index, count)
                .then(|| scrambled_id(keys.scramble, ScrambledKind::SharedDevice, index / 2, 0));
            let mut person = draw_identity(&mut rng, &city_table, index, keys);
            person.email = unique_email(&mut rng, &person, &mut taken_emails);
            person.shared_device = household;
            // Household members both log in to the shared tablet, so both have accounts.
            if household.is_some() || chance(&mut rng, ACCOUNT_SHARE) {
                person.account = Some(Account {
                    customer: next_customer,
                    loyalty: chance(&mut rng, LOYALTY_SHARE)
                        .then(|| person_loyalty_number(keys.loyalty_offset, index)),
                    duplicate: chance(&mut rng, DUPLICATE_SHARE),
                });
                next_customer += 1;
            }
            persons.push(person);
            if index % 4096 == 4095 {
                on_progress(4096);
            }
        }
        on_progress(u64::from(count % 4096));
        Self { persons }
    }
}

/// Whether person `index` is in a household pair (2k, 2k+1); both members agree.
fn household_of(seed: u64, index: u32, count: u32) -> bool {
    let pair = index / 2;
    if pair * 2 + 1 >= count {
        return false;
    }
    chance(
        &mut stream_rng(seed, Stream::Household, u64::from(pair)),
        HOUSEHOLD_PAIR_SHARE,
    )
}

fn draw_identity(
    rng: &mut Pcg64,
    city_table: &CumulativeTable,
    index: u32,
    keys: &IdKeys,
) -> Person {
    let female = chance(rng, 0.58);
    let first_name = *pick(
        rng,
        if female {
            FEMALE_FIRST_NAMES
        } else {
            MALE_FIRST_NAMES
        },
    );
    let last_name = *pick(rng, LAST_NAMES);
    let age = (42.0 + 13.0 * normal(rng)).clamp(18.0, 88.0);
    let reference_day = crate::calendar::epoch_day_of(date(2025, 11, 1));
    let birth_date = reference_day - (age * 365.25) as i32 - between(rng, 0, 364) as i32;
    let city = city_table.sample(rng);
    let postal_code = *pick(rng, CITIES[city].postal_codes);
    let store_city = CITIES[city].home;
    let stores: Vec<usize> = (0..STORE_CITIES.len())
        .filter(|s| STORE_CITIES[*s] == store_city)
        .collect();
    Person {
        female,
        first_name,
        last_name,
        birth_date,
        city,
        postal_code,
        home_store: *pick(rng, &stores),
        email: Box::from(""),
        phone: person_phone(keys.phone_offset, index),
        account: None,
        shared_device: None,
    }
}

/// Local-part patterns, e.g. marie.martin, mariemartin, m.martin, martin.marie, marie.martin85.
#[derive(Clone, Copy)]
enum LocalPattern {
    FirstDotLast,
    FirstLast,
    InitialLast,
    LastDotFirst,
    FirstDotLastYear,
    FirstUnderscoreLast,
    FirstLastNumber,
}

const LOCAL_PATTERNS: [(LocalPattern, f64); 7] = [
    (LocalPattern::FirstDotLast, 0.40),
    (LocalPattern::FirstLast, 0.15),
    (LocalPattern::InitialLast, 0.10),
    (LocalPattern::LastDotFirst, 0.08),
    (LocalPattern::FirstDotLastYear, 0.12),
    (LocalPattern::FirstUnderscoreLast, 0.05),
    (LocalPattern::FirstLastNumber, 0.10),
];

/// A canonical email whose normalised form no other person has.
fn unique_email(rng: &mut Pcg64, person: &Person, taken: &mut HashSet<String>) -> Box<str> {
    let first = email_token(person.first_name);
    let last = email_token(person.last_name);
    let year = crate::calendar::year_of_epoch_day(person.birth_date) % 100;
    let domain = *pick_weighted(rng, EMAIL_DOMAINS);
    let base = match *pick_weighted(rng, &LOCAL_PATTERNS) {
        LocalPattern::FirstDotLast => format!("{first}.{last}"),
        LocalPattern::FirstLast => format!("{first}{last}"),
        LocalPattern::InitialLast => format!("{}.{last}", &first[..1]),
        LocalPattern::LastDotFirst => format!("{last}.{first}"),
        LocalPattern::FirstDotLastYear => format!("{first}.{last}{year:02}"),
        LocalPattern::FirstUnderscoreLast => format!("{first}_{last}"),
        LocalPattern::FirstLastNumber => format!("{first}{last}{}", between(rng, 1, 99)),
    };
    // Common names collide: like real mailboxes, add a number until the address is free.
    let mut attempt = 0u64;
    loop {
        let local = match attempt {
            0 => base.clone(),
            1..=4 => format!("{base}{}", between(rng, 1, 99)),
            _ => format!("{base}{attempt}"),
        };
        let email = format!("{local}@{domain}");
        if taken.insert(normalize_email(&email)) {
            return email.into_boxed_str();
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identifiers::normalize_email;

    #[test]
    fn population_is_deterministic_with_unique_identifiers() {
        let keys = IdKeys::new(11);
        let a = Population::build(11, 5000, &keys, |_| {});
        let b = Population::build(11, 5000, &keys, |_| {});
        let emails: Vec<&str> = a.persons.iter().map(|p| &*p.email).collect();
        assert_eq!(
            emails,
            b.persons.iter().map(|p| &*p.email).collect::<Vec<_>>()
        );
        let mut normalized: Vec<String> = emails.iter().map(|e| normalize_email(e)).collect();
        normalized.sort();
        normalized.dedup();
        assert_eq!(normalized.len(), 5000);
        assert!(
            emails
                .iter()
                .all(|e| e.is_ascii() && *e == e.to_lowercase())
        );
        let accounts = a.persons.iter().filter(|p| p.account.is_some()).count();
        assert!((2500..3100).contains(&accounts), "{accounts}");
        let households = a
            .persons
            .iter()
            .filter(|p| p.shared_device.is_some())
            .count();
        assert!(households % 2 == 0 && households > 0);
    }
}
