//! Every file is readable Parquet with the exact schema, and the report matches the files.

use std::collections::BTreeSet;

use cdphub_datagen::{SOURCES, schema};

use crate::support::{list, raw, read_file, shared_lake, truth};

#[test]
fn every_file_has_the_exact_schema_and_the_report_matches() {
    let lake = shared_lake();
    assert_eq!(lake.report.persons, 2000);
    let reported: Vec<&str> = lake
        .report
        .sources
        .iter()
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(reported, SOURCES);
    for report in &lake.report.sources {
        let expected = schema::source_schema(&report.source).expect("known source");
        let files = list(&lake.store, &format!("raw/{}", report.source));
        assert_eq!(files.len() as u64, report.files, "{}", report.source);
        assert_eq!(
            files.iter().map(|(_, size)| size).sum::<u64>(),
            report.bytes,
            "{}",
            report.source
        );
        let mut rows = 0;
        for (path, _) in &files {
            assert!(path.as_ref().ends_with(".parquet"), "{path}");
            let file = read_file(&lake.store, path);
            assert_eq!(file.schema.fields(), expected.fields(), "{path}");
            assert!(file.row_groups.iter().all(|&n| n <= 128 * 1024), "{path}");
            rows += file.batch.num_rows() as u64;
        }
        assert_eq!(rows, report.rows, "{}", report.source);
        assert!(rows > 0, "{} is empty", report.source);
    }
    let truth_files = list(&lake.store, "_truth");
    assert_eq!(truth_files.len(), 1);
    assert_eq!(
        truth_files[0].0.as_ref(),
        "_truth/record_persons/part-0.parquet"
    );
    let truth_file = read_file(&lake.store, &truth_files[0].0);
    assert_eq!(
        truth_file.schema.fields(),
        schema::truth_record_persons().fields()
    );
    assert_eq!(truth_file.batch.num_rows() as u64, lake.report.truth_rows);
}

#[test]
fn monthly_sources_are_hive_partitioned_by_event_month() {
    let lake = shared_lake();
    for source in ["web_events", "email_events"] {
        let files = list(&lake.store, &format!("raw/{source}"));
        for (path, _) in &files {
            let parts: Vec<String> = path.parts().map(|p| p.as_ref().to_owned()).collect();
            assert_eq!(parts.len(), 4, "{path}");
            assert!(parts[2].starts_with("event_month=20"), "{path}");
            assert!(
                parts[3].starts_with("part-") && parts[3].ends_with(".parquet"),
                "{path}"
            );
        }
        let table = raw(lake, source);
        for (at, partition) in table
            .timestamps("occurred_at")
            .into_iter()
            .zip(&table.partitions)
        {
            let month = chrono::DateTime::from_timestamp_micros(at)
                .expect("valid")
                .format("%Y-%m")
                .to_string();
            assert_eq!(partition.as_deref(), Some(month.as_str()), "{source}");
        }
    }
    for source in [
        "crm_customers",
        "orders",
        "order_lines",
        "ad_spend",
        "consents",
    ] {
        let files = list(&lake.store, &format!("raw/{source}"));
        assert_eq!(
            files[0].0.as_ref(),
            format!("raw/{source}/part-00000.parquet")
        );
    }
}

#[test]
fn ids_are_unique_and_well_formed() {
    let lake = shared_lake();
    for (source, column, prefix) in [
        ("crm_customers", "crm_record_id", "CRM"),
        ("web_events", "event_id", "WE"),
        ("orders", "order_id", "O"),
        ("email_events", "event_id", "EE"),
        ("consents", "consent_id", "CS"),
    ] {
        let table = raw(lake, source);
        let ids = table.strings(column);
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{source}.{column} is unique");
        assert!(
            ids.iter().all(|id| id.starts_with(prefix)
                && id[prefix.len()..].bytes().all(|b| b.is_ascii_digit()))
        );
    }
    let crm = raw(lake, "crm_customers");
    assert!(
        crm.strings("customer_id")
            .iter()
            .all(|c| c.len() == 9 && c.starts_with('C'))
    );
    assert!(
        crm.strs("loyalty_id")
            .iter()
            .flatten()
            .all(|l| l.len() == 13 && l.starts_with("LOY-"))
    );
    assert!(
        crm.strs("preferred_store_id")
            .iter()
            .flatten()
            .all(|s| ("S001"..="S040").contains(s))
    );
    let web = raw(lake, "web_events");
    assert!(
        web.strs("anonymous_id")
            .iter()
            .flatten()
            .all(|a| a.len() == 21 && a.starts_with("anon-"))
    );
    assert!(
        web.strs("device_id")
            .iter()
            .flatten()
            .all(|d| d.len() == 20 && d.starts_with("dev-"))
    );
    let persons = truth(lake)
        .strings("person_id")
        .iter()
        .map(|p| p.to_string())
        .collect::<BTreeSet<_>>();
    assert!(persons.iter().all(|p| p.len() == 8 && p.starts_with('P')));
}

#[test]
fn timestamps_stay_in_the_window_and_orders_add_up() {
    let lake = shared_lake();
    let start = chrono::DateTime::parse_from_rfc3339("2024-11-01T00:00:00Z")
        .unwrap()
        .timestamp_micros();
    let end = chrono::DateTime::parse_from_rfc3339("2026-10-31T23:59:59.999999Z")
        .unwrap()
        .timestamp_micros();
    for (source, column) in [
        ("crm_customers", "created_at"),
        ("crm_customers", "updated_at"),
        ("web_events", "occurred_at"),
        ("orders", "ordered_at"),
        ("email_events", "occurred_at"),
        ("consents", "occurred_at"),
    ] {
        let times = raw(lake, source).timestamps(column);
        assert!(
            times.iter().all(|t| (start..=end).contains(t)),
            "{source}.{column}"
        );
    }
    let crm = raw(lake, "crm_customers");
    let (created, updated) = (crm.timestamps("created_at"), crm.timestamps("updated_at"));
    assert!(created.iter().zip(&updated).all(|(c, u)| c <= u));

    let orders = raw(lake, "orders");
    let lines = raw(lake, "order_lines");
    let mut totals = std::collections::BTreeMap::new();
    let (order_ids, quantities, prices) = (
        lines.strings("order_id"),
        lines.ints("quantity"),
        lines.cents("unit_price"),
    );
    for i in 0..lines.len() {
        *totals.entry(order_ids[i]).or_insert(0i128) += i128::from(quantities[i]) * prices[i];
    }
    let (ids, amounts) = (orders.strings("order_id"), orders.cents("total_amount"));
    for (id, amount) in ids.iter().zip(&amounts) {
        assert_eq!(totals.get(id), Some(amount), "total of {id}");
    }
    assert_eq!(
        totals.len(),
        ids.len(),
        "every line belongs to an order and every order has lines"
    );
    let line_numbers = lines.ints("line_number");
    assert!(line_numbers.iter().all(|n| (1..=5).contains(n)));
    assert!(orders.strings("currency").iter().all(|c| *c == "EUR"));
}
