//! The person's CRM rows: the account, and sometimes a messy duplicate entry.

use rand_pcg::Pcg64;

use crate::calendar::{DAY, Micros, SECOND};
use crate::identifiers::{
    EmailStyle, NameStyle, PHONE_FORMATS, PhoneFormat, email_variant, fold_accents, format_phone,
    name_variant,
};
use crate::life::PersonSim;
use crate::life::profile::ChannelMix;
use crate::reference::CITIES;
use crate::rng::{between, chance, pick, pick_weighted};
use crate::rows::{ChunkRows, CrmRow};

/// What the CRM knows about the account, copied out of the profile.
struct AccountFacts {
    customer: u32,
    loyalty: Option<u64>,
    email: Option<String>,
    phone: Option<PhoneFormat>,
    created_at: Micros,
    duplicate: bool,
}

impl PersonSim<'_> {
    pub(super) fn crm_records(&mut self, rows: &mut ChunkRows) {
        let Some(account) = &self.profile.account else {
            return;
        };
        let facts = AccountFacts {
            customer: account.account.customer,
            loyalty: account.account.loyalty,
            email: account.crm_email.clone(),
            phone: account.crm_phone,
            created_at: account.created_at,
            duplicate: account.account.duplicate,
        };
        let end = self.plan.calendar.end();
        let duplicate_at = facts.duplicate.then(|| {
            // Re-registered later, typically at a till that did not find the account.
            let earliest = (facts.created_at + 30 * DAY).min(end - DAY);
            between(&mut self.rng, earliest as u64, (end - DAY) as u64) as Micros
        });
        let updated_at = if chance(&mut self.rng, 0.6) {
            let latest = duplicate_at.unwrap_or(end);
            between(&mut self.rng, facts.created_at as u64, latest as u64) as Micros
        } else {
            facts.created_at
        };
        let original = self.original_crm_row(&facts, updated_at);
        let duplicate = duplicate_at.map(|at| self.duplicate_crm_row(&facts, &original, at));
        rows.crm.push(original);
        rows.crm.extend(duplicate);
    }

    fn original_crm_row(&mut self, facts: &AccountFacts, updated_at: Micros) -> CrmRow {
        let person = self.person;
        let style = *pick_weighted(
            &mut self.rng,
            &[
                (NameStyle::Exact, 0.80),
                (NameStyle::Upper, 0.12),
                (NameStyle::NoAccents, 0.06),
                (NameStyle::Spaces, 0.02),
            ],
        );
        let city = CITIES[person.city].name;
        let city = if chance(&mut self.rng, 0.15) {
            city.to_uppercase()
        } else {
            city.to_owned()
        };
        let has_address = chance(&mut self.rng, 0.92);
        let shops_in_store =
            self.profile.channels != ChannelMix::WebFirst || chance(&mut self.rng, 0.3);
        CrmRow {
            person: self.index,
            customer: facts.customer,
            first_name: Some(name_variant(&mut self.rng, person.first_name, style)),
            last_name: Some(name_variant(&mut self.rng, person.last_name, style)),
            email: facts.email.clone(),
            phone: facts.phone.map(|f| format_phone(person.phone, f)),
            birth_date: chance(&mut self.rng, 0.7).then_some(person.birth_date),
            city: has_address.then_some(city),
            postal_code: has_address.then_some(person.postal_code),
            loyalty: facts.loyalty,
            created_at: facts.created_at,
            updated_at,
            preferred_store: shops_in_store.then_some(person.home_store),
        }
    }

    /// Same customer_id, new crm_record_id, later dates and variant spellings.
    fn duplicate_crm_row(
        &mut self,
        facts: &AccountFacts,
        original: &CrmRow,
        created_at: Micros,
    ) -> CrmRow {
        let person = self.person;
        let end = self.plan.calendar.end();
        let updated_at = (created_at + between(&mut self.rng, 0, 30 * DAY as u64) as Micros)
            .max(original.updated_at + SECOND)
            .min(end);
        let (first_name, last_name) = self.misspelt_names(original);
        let email_style = *pick(
            &mut self.rng,
            &[
                EmailStyle::Upper,
                EmailStyle::Capitalized,
                EmailStyle::Padded,
            ],
        );
        let phone_format = other_format(&mut self.rng, facts.phone);
        CrmRow {
            person: self.index,
            customer: facts.customer,
            first_name: Some(first_name),
            last_name: Some(last_name),
            email: Some(email_variant(&mut self.rng, &person.email, email_style)),
            phone: Some(format_phone(person.phone, phone_format)),
            birth_date: original.birth_date.filter(|_| chance(&mut self.rng, 0.5)),
            city: original.city.clone(),
            postal_code: original.postal_code,
            loyalty: original.loyalty.filter(|_| chance(&mut self.rng, 0.5)),
            created_at,
            updated_at,
            preferred_store: original.preferred_store,
        }
    }

    /// First and last name with at least one visible difference from the original row:
    /// a dropped accent or a typo.
    fn misspelt_names(&mut self, original: &CrmRow) -> (String, String) {
        let (first, last) = (self.person.first_name, self.person.last_name);
        let variant = |name: &str, rng: &mut Pcg64| {
            let accented = fold_accents(name) != name;
            let style = if accented && chance(rng, 0.7) {
                NameStyle::NoAccents
            } else {
                NameStyle::Typo
            };
            name_variant(rng, name, style)
        };
        let (new_first, new_last) = match between(&mut self.rng, 0, 2) {
            0 => (variant(first, &mut self.rng), last.to_owned()),
            1 => (first.to_owned(), variant(last, &mut self.rng)),
            _ => (variant(first, &mut self.rng), variant(last, &mut self.rng)),
        };
        let differs = |candidate: &str| Some(candidate) != original.last_name.as_deref();
        if Some(&new_first) != original.first_name.as_ref() || differs(&new_last) {
            return (new_first, new_last);
        }
        // The original already had the dropped accent: make a typo instead.
        for _ in 0..5 {
            let typo = name_variant(&mut self.rng, last, NameStyle::Typo);
            if differs(&typo) {
                return (new_first, typo);
            }
        }
        // No original style upper-cases and pads a name at once.
        (new_first, format!("{} ", last.to_uppercase()))
    }
}

/// A phone format different from the one the original row used.
fn other_format(rng: &mut Pcg64, original: Option<PhoneFormat>) -> PhoneFormat {
    let others: Vec<PhoneFormat> = PHONE_FORMATS
        .into_iter()
        .filter(|f| Some(*f) != original)
        .collect();
    *pick(rng, &others)
}
