//! Random draws for the generators, over a device's own [`StdRng`]: the `rand_distr`
//! distributions the signals use, in forms that cannot fail (parameters out of range give the
//! degenerate value instead of an error).

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp1, Poisson, StandardNormal};

/// Picks `healthy` or `problem` by the device's mode.
pub(crate) fn by_mode(problem: bool, healthy: f64, problem_value: f64) -> f64 {
    if problem { problem_value } else { healthy }
}

/// Normal(mean, sd).
pub(crate) fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    mean + sd * z
}

/// LogNormal with the given median and shape `sigma` (right-skewed: latencies, sizes).
pub(crate) fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    median * (sigma * z).exp()
}

/// Exponential with the given mean.
pub(crate) fn exp(rng: &mut StdRng, mean: f64) -> f64 {
    let e: f64 = Exp1.sample(rng);
    mean * e
}

/// Poisson count with mean `lambda` (0 for `lambda <= 0`).
pub(crate) fn poisson(rng: &mut StdRng, lambda: f64) -> u64 {
    Poisson::new(lambda).map_or(0.0, |p| p.sample(rng)) as u64
}

/// True with probability `p` (never for `p <= 0`, always for `p >= 1`).
pub(crate) fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// One of `items`, uniformly; `None` only for an empty slice.
pub(crate) fn one_of<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    items.get(rng.random_range(0..items.len()))
}

/// An index into `weights`, drawn in proportion to them (the last for rounding leftovers).
pub(crate) fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len().saturating_sub(1)
}

/// `N` random bytes, never all zero.
pub(crate) fn nonzero_id<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    let mut id = [0u8; N];
    for b in id.iter_mut() {
        *b = rng.random();
    }
    if id.iter().all(|b| *b == 0) {
        id[N - 1] = 1;
    }
    id
}
