//! The ground truth covers every person-bearing record exactly once, and `resolvable`
//! matches an independent recomputation from the raw files.

use std::collections::{BTreeMap, BTreeSet};

use cdphub_datagen::identifiers::{is_junk_email, is_junk_phone, normalize_email, normalize_phone};

use crate::support::{Lake, PERSON_SOURCES, Table, persons_of, raw, shared_lake, truth};

#[test]
fn every_person_bearing_record_has_exactly_one_truth_row() {
    let lake = shared_lake();
    let truth = truth(lake);
    let keys: Vec<(&str, &str)> = truth
        .strings("source")
        .into_iter()
        .zip(truth.strings("record_id"))
        .collect();
    let unique: BTreeSet<(&str, &str)> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "no record has two truth rows");
    let mut raw_keys = BTreeSet::new();
    for (source, key) in PERSON_SOURCES {
        let table = raw(lake, source);
        for id in table.strings(key) {
            raw_keys.insert((source.to_owned(), id.to_owned()));
        }
    }
    let truth_keys: BTreeSet<(String, String)> = unique
        .iter()
        .map(|(s, r)| (s.to_string(), r.to_string()))
        .collect();
    assert_eq!(truth_keys, raw_keys);
    let persons: BTreeSet<&str> = truth.strings("person_id").into_iter().collect();
    assert!(
        persons.len() > 1900,
        "almost every person leaves a record: {}",
        persons.len()
    );
}

/// A usable identifier read back from the raw files.
type Id = (&'static str, String);

/// Usable identifiers per record, per source: (record_id, identifiers).
fn record_identifiers(lake: &Lake) -> Vec<(&'static str, String, Vec<Id>)> {
    let mut out = Vec::new();
    for (source, key) in PERSON_SOURCES {
        let table = raw(lake, source);
        let column = |name: &str| -> Vec<Option<String>> {
            if table.batch.column_by_name(name).is_some() {
                table
                    .strs(name)
                    .into_iter()
                    .map(|v| v.map(str::to_owned))
                    .collect()
            } else {
                vec![None; table.len()]
            }
        };
        let (customer, email, phone) = (column("customer_id"), column("email"), column("phone"));
        let (loyalty, anonymous, device) = (
            column("loyalty_id"),
            column("anonymous_id"),
            column("device_id"),
        );
        for (i, id) in table.strings(key).into_iter().enumerate() {
            let mut ids: Vec<Id> = Vec::new();
            ids.extend(customer[i].clone().map(|v| ("customer_id", v)));
            ids.extend(
                email[i]
                    .as_deref()
                    .map(normalize_email)
                    .filter(|e| !is_junk_email(e))
                    .map(|v| ("email", v)),
            );
            ids.extend(
                phone[i]
                    .as_deref()
                    .map(normalize_phone)
                    .filter(|p| !is_junk_phone(p))
                    .map(|v| ("phone", v)),
            );
            ids.extend(loyalty[i].clone().map(|v| ("loyalty_id", v)));
            ids.extend(anonymous[i].clone().map(|v| ("anonymous_id", v)));
            ids.extend(device[i].clone().map(|v| ("device_id", v)));
            out.push((source, id.to_owned(), ids));
        }
    }
    out
}

fn person_index(truth: &Table) -> BTreeMap<(String, String), (String, bool)> {
    let (sources, records, persons, flags) = (
        truth.strings("source"),
        truth.strings("record_id"),
        truth.strings("person_id"),
        truth.bools("resolvable"),
    );
    (0..truth.len())
        .map(|i| {
            (
                (sources[i].to_owned(), records[i].to_owned()),
                (persons[i].to_owned(), flags[i]),
            )
        })
        .collect()
}

#[test]
fn usable_identifiers_never_span_two_persons_except_household_tablets() {
    let lake = shared_lake();
    let owner = person_index(&truth(lake));
    let mut persons_by_id: BTreeMap<Id, BTreeSet<String>> = BTreeMap::new();
    for (source, record, ids) in record_identifiers(lake) {
        let person = &owner[&(source.to_owned(), record)].0;
        for id in ids {
            persons_by_id.entry(id).or_default().insert(person.clone());
        }
    }
    let shared: Vec<(&Id, &BTreeSet<String>)> =
        persons_by_id.iter().filter(|(_, p)| p.len() > 1).collect();
    assert!(!shared.is_empty(), "households share at least one tablet");
    for (id, persons) in shared {
        assert_eq!(id.0, "device_id", "{id:?} is shared by {persons:?}");
        assert_eq!(
            persons.len(),
            2,
            "a household tablet is used by its two members"
        );
    }
}

#[test]
fn resolvable_matches_an_independent_recomputation() {
    let lake = shared_lake();
    let owner = person_index(&truth(lake));
    let records = record_identifiers(lake);
    // Household tablets: device ids used by two persons.
    let mut device_persons: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (source, record, ids) in &records {
        let person = owner[&(source.to_string(), record.clone())].0.as_str();
        for (kind, value) in ids {
            if *kind == "device_id" {
                device_persons
                    .entry(value.as_str())
                    .or_default()
                    .insert(person);
            }
        }
    }
    let shared: BTreeSet<&str> = device_persons
        .iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(d, _)| *d)
        .collect();

    let mut by_person: BTreeMap<&str, Vec<(String, Vec<Id>)>> = BTreeMap::new();
    for (source, record, ids) in &records {
        let person = owner[&(source.to_string(), record.clone())].0.as_str();
        let usable = ids
            .iter()
            .filter(|(k, v)| !(*k == "device_id" && shared.contains(v.as_str())))
            .cloned()
            .collect();
        by_person
            .entry(person)
            .or_default()
            .push((format!("{source}\u{0}{record}"), usable));
    }
    let mut checked = 0;
    let mut resolvable = 0;
    for records in by_person.values() {
        let expected = recompute(records);
        for ((key, _), flag) in records.iter().zip(expected) {
            let (source, record) = key.split_once('\u{0}').expect("key");
            assert_eq!(
                owner[&(source.to_owned(), record.to_owned())].1,
                flag,
                "{source} {record}"
            );
            checked += 1;
            resolvable += usize::from(flag);
        }
    }
    assert_eq!(checked, owner.len());
    let share = resolvable as f64 / checked as f64;
    assert!((0.5..0.99).contains(&share), "resolvable share {share}");
}

/// Union-find over one person's records; the largest component (ties: smallest record_id)
/// with at least 2 records is resolvable.
fn recompute(records: &[(String, Vec<Id>)]) -> Vec<bool> {
    let n = records.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            x = parent[x];
        }
        x
    }
    let mut first_seen: BTreeMap<&Id, usize> = BTreeMap::new();
    for (i, (_, ids)) in records.iter().enumerate() {
        for id in ids {
            if let Some(&j) = first_seen.get(id) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            } else {
                first_seen.insert(id, i);
            }
        }
    }
    let roots: Vec<usize> = (0..n).map(|i| find(&mut parent, i)).collect();
    let mut components: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    for (i, root) in roots.iter().enumerate() {
        let record_id = records[i].0.split_once('\u{0}').expect("key").1;
        let entry = components.entry(*root).or_insert((0, record_id));
        entry.0 += 1;
        entry.1 = entry.1.min(record_id);
    }
    let winner = components
        .iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.1.1.cmp(a.1.1)))
        .filter(|(_, (size, _))| *size >= 2)
        .map(|(root, _)| *root);
    roots.iter().map(|r| Some(*r) == winner).collect()
}

#[test]
fn a_record_known_only_by_a_placeholder_is_not_resolvable() {
    let lake = shared_lake();
    let orders = raw(lake, "orders");
    let owner = persons_of(&truth(lake), "orders");
    let flags = person_index(&truth(lake));
    let (ids, email, phone) = (
        orders.strings("order_id"),
        orders.strs("email"),
        orders.strs("phone"),
    );
    let (customer, loyalty) = (orders.strs("customer_id"), orders.strs("loyalty_id"));
    let mut junk_only = 0;
    for i in 0..orders.len() {
        let junk_email = email[i].is_some_and(|e| is_junk_email(&normalize_email(e)));
        let junk_phone = phone[i].is_some_and(|p| is_junk_phone(&normalize_phone(p)));
        let real_email = email[i].is_some() && !junk_email;
        let real_phone = phone[i].is_some() && !junk_phone;
        if (junk_email || junk_phone)
            && !real_email
            && !real_phone
            && customer[i].is_none()
            && loyalty[i].is_none()
        {
            junk_only += 1;
            assert!(owner.contains_key(ids[i]));
            assert!(
                !flags[&("orders".to_owned(), ids[i].to_owned())].1,
                "{} is junk only",
                ids[i]
            );
        }
    }
    assert!(junk_only >= 3, "{junk_only} junk-only orders");
}
