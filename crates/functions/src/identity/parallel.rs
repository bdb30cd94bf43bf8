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

    #[test]
    fn parallel_sort_matches_a_plain_sort() {
        let mut state = 7u64;
        let mut items: Vec<u64> = (0..200_001)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % 1000
            })
            .collect();
        let mut expected = items.clone();
        expected.sort_unstable();
        parallel_sort(&mut items);
        assert_eq!(items, expected);
    }

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<u32> = (0..1001).collect();
        let doubled = parallel_map(&items, |&i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
