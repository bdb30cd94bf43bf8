//! Same (scale, seed) gives the same bytes; regeneration leaves no stale file.

use std::sync::Arc;

use cdphub_datagen::{DatagenError, GenerateOptions, NoProgress, generate};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::support::{block_on, generate_into, generate_lake, list, snapshot};

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let first = generate_lake(0.005, 7);
    let second = generate_lake(0.005, 7);
    let a = snapshot(&first.store);
    let b = snapshot(&second.store);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(
            bytes == &b[path],
            "{path} differs between two runs with the same seed"
        );
    }
    assert_eq!(first.report, second.report);

    let other = snapshot(&generate_lake(0.005, 8).store);
    let crm = "raw/crm_customers/part-00000.parquet";
    assert_ne!(a[crm], other[crm], "a different seed gives different data");
    let differing = a
        .iter()
        .filter(|(path, bytes)| other.get(*path) != Some(*bytes))
        .count();
    assert!(
        differing > a.len() / 2,
        "only {differing} of {} objects differ",
        a.len()
    );
}

#[test]
fn regenerating_replaces_every_previous_file() {
    let store = Arc::new(InMemory::new());
    generate_into(store.clone(), "lake", 0.01, 1);
    // Stray files an earlier run or a person may have left behind.
    for stale in [
        "lake/raw/orders/part-00007.parquet",
        "lake/raw/web_events/event_month=2019-01/part-00000.parquet",
    ] {
        block_on(store.put(&Path::from(stale), PutPayload::from_static(b"stale"))).expect("put");
    }
    let unrelated = Path::from("lake/curated/keep.txt");
    block_on(store.put(&unrelated, PutPayload::from_static(b"keep"))).expect("put");
    generate_into(store.clone(), "lake", 0.002, 1);

    let fresh = Arc::new(InMemory::new());
    generate_into(fresh.clone(), "lake", 0.002, 1);
    let mut after = snapshot(&store);
    assert_eq!(
        after.remove("lake/curated/keep.txt").as_deref(),
        Some(&b"keep"[..]),
        "other folders are left alone"
    );
    assert_eq!(after, snapshot(&fresh));
}

#[test]
fn invalid_options_are_rejected_before_writing() {
    let store = Arc::new(InMemory::new());
    for scale in [0.0, -2.0, f64::NAN, 1e9] {
        let options = GenerateOptions { scale, seed: 1 };
        let result = block_on(generate(
            store.clone(),
            &Path::from("x"),
            &options,
            &NoProgress,
        ));
        let err = result.expect_err("invalid scale");
        assert!(matches!(err, DatagenError::InvalidOptions { .. }), "{err}");
        assert!(err.to_string().contains("scale"), "{err}");
    }
    assert!(list(&store, "").is_empty());
}
