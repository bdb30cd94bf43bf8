//! Dense linear solve for the Markov chains: a few dozen lines did not justify a dependency.

/// Solves `a · x = b` by Gaussian elimination with partial pivoting, where `a` is `n × n` in
/// row-major order and `n = b.len()`. Both are overwritten; `b` ends up holding `x`.
/// Returns `false` when a pivot is zero, i.e. `a` is singular.
pub(crate) fn solve_dense(a: &mut [f64], b: &mut [f64]) -> bool {
    let n = b.len();
    debug_assert_eq!(a.len(), n * n);
    for k in 0..n {
        let pivot_row = (k..n)
            .max_by(|&i, &j| a[i * n + k].abs().total_cmp(&a[j * n + k].abs()))
            .expect("k < n");
        let pivot = a[pivot_row * n + k];
        if pivot == 0.0 || !pivot.is_finite() {
            return false;
        }
        if pivot_row != k {
            for column in 0..n {
                a.swap(k * n + column, pivot_row * n + column);
            }
            b.swap(k, pivot_row);
        }
        let (upper, lower) = a.split_at_mut((k + 1) * n);
        let pivot_tail = &upper[k * n + k..];
        for (offset, row) in lower.chunks_exact_mut(n).enumerate() {
            let factor = row[k] / pivot;
            // Chains are sparse: most rows have nothing to eliminate in this column.
            if factor == 0.0 {
                continue;
            }
            for (target, &source) in row[k..].iter_mut().zip(pivot_tail) {
                *target -= factor * source;
            }
            b[k + 1 + offset] -= factor * b[k];
        }
    }
    for k in (0..n).rev() {
        let row = &a[k * n..(k + 1) * n];
        let known: f64 = row[k + 1..]
            .iter()
            .zip(&b[k + 1..])
            .map(|(a, x)| a * x)
            .sum();
        b[k] = (b[k] - known) / row[k];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_with_pivoting() {
        // The zero in the top-left corner needs a row swap.
        let mut a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 2.0, 0.0, 3.0];
        let mut b = vec![7.0, 3.0, 11.0]; // a · (1, 2, 3)
        assert!(solve_dense(&mut a, &mut b));
        for (got, want) in b.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn reports_singular_matrices() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        let mut b = vec![1.0, 2.0];
        assert!(!solve_dense(&mut a, &mut b));
    }
}
