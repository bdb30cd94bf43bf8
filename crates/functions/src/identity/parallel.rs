//! Work split over the machine's cores with scoped threads, for the stitch's big passes.

/// The cores to use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sorts on two threads when the slice is long (halves sorted side by side, then merged).
pub fn parallel_sort<T: Ord + Copy + Send>(items: &mut Vec<T>) {
    const PARALLEL_FROM: usize = 1 << 16;
    if cores() < 2 || items.len() < PARALLEL_FROM {
        items.sort_unstable();
        return;
    }
    let middle = items.len() / 2;
    {
        let (left, right) = items.split_at_mut(middle);
        std::thread::scope(|scope| {
            scope.spawn(|| left.sort_unstable());
            right.sort_unstable();
        });
    }
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, middle);
    while i < middle && j < items.len() {
        if items[j] < items[i] {
            merged.push(items[j]);
            j += 1;
        } else {
            merged.push(items[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..middle]);
    merged.extend_from_slice(&items[j..]);
    *items = merged;
}

/// Sorts items whose buckets are known: `bucket(item)` (below `buckets`) must grow with the
/// item's order. The items are scattered into their buckets, then the buckets are sorted
/// side by side on the cores, each small enough to sort in cache when the keys spread
/// evenly over the buckets (hashes, dense numbers).
pub fn parallel_bucket_sort<T: Ord + Copy + Default + Send>(
    items: &mut Vec<T>,
    buckets: usize,
    bucket: impl Fn(&T) -> usize,
) {
    if buckets == 0 || items.is_empty() {
        return;
    }
    let mut starts = vec![0usize; buckets + 1];
    for item in items.iter() {
        starts[bucket(item) + 1] += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut scattered = vec![T::default(); items.len()];
    for &item in items.iter() {
        let slot = &mut next[bucket(&item)];
        scattered[*slot] = item;
        *slot += 1;
    }
    // Contiguous runs of buckets with about the same number of items, one per core; each
    // run is (its first bucket, one past its last, its items).
    let per_thread = items.len().div_ceil(cores()).max(1);
    let mut runs: Vec<(usize, usize, &mut [T])> = Vec::new();
    let mut rest: &mut [T] = &mut scattered;
    let mut first = 0;
    for b in 0..buckets {
        let (run_start, end) = (starts[first], starts[b + 1]);
        if end - run_start >= per_thread || b + 1 == buckets {
            let (run, tail) = std::mem::take(&mut rest).split_at_mut(end - run_start);
            runs.push((first, b + 1, run));
            rest = tail;
            first = b + 1;
        }
    }
    let starts = &starts;
    let sort_run = |(first, last, run): (usize, usize, &mut [T])| {
        let base = starts[first];
        for b in first..last {
            run[starts[b] - base..starts[b + 1] - base].sort_unstable();
        }
    };
    std::thread::scope(|scope| {
        let mut runs = runs.into_iter();
        let first = runs.next();
        for run in runs {
            scope.spawn(move || sort_run(run));
        }
        if let Some(run) = first {
            sort_run(run);
        }
    });
    *items = scattered;
}

/// `each` applied to every item, the items split in contiguous runs over the cores; the
/// results keep the items' order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], each: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parallel_runs(items, |run| run.iter().map(&each).collect::<Vec<R>>())
        .into_iter()
        .flatten()
        .collect()
}

/// `each` applied to contiguous runs of the items, one run per core; the results come
/// back in run order. For work that keeps state across the items of a run.
pub fn parallel_runs<T: Sync, R: Send>(items: &[T], each: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len()).max(1);
    if threads == 1 {
        return vec![each(items)];
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let each = &each;
        let handles: Vec<_> = items
            .chunks(per_thread)
            .skip(1)
            .map(|run| scope.spawn(move || each(run)))
            .collect();
        let mut results = vec![each(&items[..per_thread])];
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("worker thread")),
        );
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` repeatable pseudo-random numbers (xorshift from `seed`).
    fn random_numbers(seed: u64, len: usize) -> Vec<u64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect()
    }

    #[test]
    fn parallel_sort_matches_a_plain_sort() {
        // Few distinct values, so equal items meet across the two halves.
        let mut items: Vec<u64> = random_numbers(7, 200_001)
            .into_iter()
            .map(|n| n % 1000)
            .collect();
        let mut expected = items.clone();
        expected.sort_unstable();
        parallel_sort(&mut items);
        assert_eq!(items, expected);
    }

    #[test]
    fn parallel_bucket_sort_matches_a_plain_sort() {
        for len in [0, 1, 5, 70_001] {
            let mut items = random_numbers(11 + len as u64, len);
            let mut expected = items.clone();
            expected.sort_unstable();
            // Top bits as buckets; many buckets stay empty for the short inputs.
            parallel_bucket_sort(&mut items, 1 << 10, |&item| (item >> 54) as usize);
            assert_eq!(items, expected);
        }
    }

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<u32> = (0..1001).collect();
        let doubled = parallel_map(&items, |&i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
