//! Ground truth: which raw records belong to which person, and whether identity
//! resolution can be expected to attach each record to the person.
//!
//! Per person, records are linked when they share a usable identifier (customer_id,
//! normalised email, normalised phone, loyalty_id, anonymous_id, device_id), excluding
//! cashier placeholders and household-shared devices. The person's largest linked
//! component (ties: the one holding the smallest record_id) is resolvable when it has at
//! least two records; every other record is not.

use crate::identifiers::{is_junk_email, is_junk_phone, normalize_email, normalize_phone};
use crate::rows::{ConsentRow, CrmRow, EmailEventRow, OrderRow, WebEventRow};

/// A usable identifier, normalised. Numeric ids are kept as numbers: their text form is
/// a fixed injective format.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IdKey {
    Customer(u32),
    Email(String),
    Phone(String),
    Loyalty(u64),
    Anonymous(u64),
    Device(u64),
}

/// Collects the usable identifiers of records of one person.
pub(crate) struct IdCollector {
    /// The person's household-shared device, which is not usable.
    pub shared_device: Option<u64>,
    pub ids: Vec<IdKey>,
}

impl IdCollector {
    pub(crate) fn new(shared_device: Option<u64>) -> Self {
        Self {
            shared_device,
            ids: Vec::new(),
        }
    }

    fn customer(&mut self, value: Option<u32>) {
        if let Some(v) = value {
            self.ids.push(IdKey::Customer(v));
        }
    }

    fn email(&mut self, raw: Option<&str>) {
        if let Some(raw) = raw {
            let normalized = normalize_email(raw);
            if !normalized.is_empty() && !is_junk_email(&normalized) {
                self.ids.push(IdKey::Email(normalized));
            }
        }
    }

    fn phone(&mut self, raw: Option<&str>) {
        if let Some(raw) = raw {
            let normalized = normalize_phone(raw);
            if normalized.len() > 1 && !is_junk_phone(&normalized) {
                self.ids.push(IdKey::Phone(normalized));
            }
        }
    }

    fn loyalty(&mut self, value: Option<u64>) {
        if let Some(v) = value {
            self.ids.push(IdKey::Loyalty(v));
        }
    }

    fn anonymous(&mut self, value: Option<u64>) {
        if let Some(v) = value {
            self.ids.push(IdKey::Anonymous(v));
        }
    }

    fn device(&mut self, value: Option<u64>) {
        if let Some(v) = value.filter(|v| Some(*v) != self.shared_device) {
            self.ids.push(IdKey::Device(v));
        }
    }

    pub(crate) fn crm(&mut self, row: &CrmRow) {
        self.customer(Some(row.customer));
        self.email(row.email.as_deref());
        self.phone(row.phone.as_deref());
        self.loyalty(row.loyalty);
    }

    pub(crate) fn web(&mut self, row: &WebEventRow) {
        self.customer(row.customer);
        self.email(row.email.as_deref());
        self.anonymous(row.anonymous_id);
        self.device(row.device_id);
    }

    pub(crate) fn order(&mut self, row: &OrderRow) {
        self.customer(row.customer);
        self.email(row.email.as_deref());
        self.phone(row.phone.as_deref());
        self.loyalty(row.loyalty);
        self.anonymous(row.anonymous_id);
        self.device(row.device_id);
    }

    pub(crate) fn email_event(&mut self, row: &EmailEventRow) {
        self.email(Some(&row.email));
    }

    pub(crate) fn consent(&mut self, row: &ConsentRow) {
        self.customer(row.customer);
        self.email(row.email.as_deref());
        self.phone(row.phone.as_deref());
    }
}

/// One record of a person for the resolution: its identifiers and the sort key of its
/// record_id.
pub(crate) struct PersonRecord<K: Ord> {
    pub record_key: K,
    pub ids: Vec<IdKey>,
}

/// `resolvable` for each record of one person, in input order.
pub(crate) fn resolve<K: Ord + Copy>(records: &[PersonRecord<K>]) -> Vec<bool> {
    let n = records.len();
    let mut components = UnionFind::new(n);
    let mut occurrences: Vec<(&IdKey, usize)> = records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.ids.iter().map(move |id| (id, i)))
        .collect();
    occurrences.sort_unstable();
    for pair in occurrences.windows(2) {
        if pair[0].0 == pair[1].0 {
            components.union(pair[0].1, pair[1].1);
        }
    }
    // Size and smallest record key of each component, keyed by root.
    let mut size = vec![0usize; n];
    let mut smallest: Vec<Option<K>> = vec![None; n];
    for (i, record) in records.iter().enumerate() {
        let root = components.find(i);
        size[root] += 1;
        smallest[root] =
            Some(smallest[root].map_or(record.record_key, |k| k.min(record.record_key)));
    }
    let winner = (0..n).filter(|&r| size[r] > 0).max_by(|&a, &b| {
        size[a]
            .cmp(&size[b])
            .then_with(|| smallest[b].cmp(&smallest[a]))
    });
    let Some(winner) = winner.filter(|&w| size[w] >= 2) else {
        return vec![false; n];
    };
    (0..n).map(|i| components.find(i) == winner).collect()
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Deterministic: the smaller index becomes the root.
            let (low, high) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[high] = low;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: u32, ids: Vec<IdKey>) -> PersonRecord<u32> {
        PersonRecord {
            record_key: key,
            ids,
        }
    }

    #[test]
    fn largest_component_wins_and_singletons_lose() {
        let records = vec![
            record(1, vec![IdKey::Customer(7)]),
            record(2, vec![IdKey::Customer(7), IdKey::Email("a@b.fr".into())]),
            record(3, vec![IdKey::Email("a@b.fr".into())]),
            record(4, vec![IdKey::Anonymous(9)]),
            record(5, vec![IdKey::Anonymous(9)]),
            record(6, vec![]),
        ];
        assert_eq!(
            resolve(&records),
            vec![true, true, true, false, false, false]
        );
    }

    #[test]
    fn ties_go_to_the_component_with_the_smallest_record() {
        let records = vec![
            record(5, vec![IdKey::Loyalty(1)]),
            record(6, vec![IdKey::Loyalty(1)]),
            record(2, vec![IdKey::Anonymous(3)]),
            record(9, vec![IdKey::Anonymous(3)]),
        ];
        assert_eq!(resolve(&records), vec![false, false, true, true]);
    }

    #[test]
    fn a_lone_record_is_not_resolvable() {
        assert_eq!(resolve(&[record(1, vec![IdKey::Customer(1)])]), vec![false]);
        assert_eq!(
            resolve(&[record(1, vec![]), record(2, vec![])]),
            vec![false, false]
        );
    }

    #[test]
    fn junk_and_shared_devices_are_not_usable() {
        let mut collector = IdCollector::new(Some(42));
        collector.email(Some("TEST@test.com "));
        collector.phone(Some("06 00 00 00 00"));
        collector.phone(Some("0000000000"));
        collector.device(Some(42));
        assert!(collector.ids.is_empty());
        collector.device(Some(43));
        collector.email(Some(" Marie.Martin+promo@gmail.com"));
        assert_eq!(
            collector.ids,
            vec![
                IdKey::Device(43),
                IdKey::Email("mariemartin@gmail.com".into())
            ]
        );
    }
}
