//! Exact statistics of small samples: nearest-rank percentiles, histograms
//! and CDFs of sorted values, and the `Percentiles` and `Bin` types the
//! reports share. Campaigns use the bounded-memory `distribution` module
//! instead, which holds no values.

use serde::Serialize;

/// Order statistics of a set of values (nearest-rank percentiles).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many values.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Sorts finite values ascending.
pub fn sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|value| value.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    values
}

/// The nearest-rank `p`-th percentile of ascending `values` (0 < p <= 100).
pub fn nearest_rank(values: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

/// Percentiles of ascending `values`, or `None` when empty.
pub fn percentiles(values: &[f64]) -> Option<Percentiles> {
    let (first, last) = (values.first()?, values.last()?);
    Some(Percentiles {
        count: values.len(),
        min: *first,
        p50: nearest_rank(values, 50.0),
        p95: nearest_rank(values, 95.0),
        p99: nearest_rank(values, 99.0),
        max: *last,
        mean: values.iter().sum::<f64>() / values.len() as f64,
    })
}

/// One histogram bin `[low, high)` (the last bin includes `high`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub low: f64,
    /// Upper edge.
    pub high: f64,
    /// Values in the bin.
    pub count: usize,
}

/// `bins` equal-width bins over ascending `values`.
pub fn histogram(values: &[f64], bins: usize) -> Vec<Bin> {
    let (Some(&low), Some(&high)) = (values.first(), values.last()) else { return Vec::new() };
    let bins = bins.max(1);
    let width = if high > low { (high - low) / bins as f64 } else { 1.0 };
    let mut counts = vec![0usize; bins];
    for value in values {
        let index = (((value - low) / width) as usize).min(bins - 1);
        counts[index] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| Bin { low: low + width * i as f64, high: low + width * (i + 1) as f64, count })
        .collect()
}

/// The empirical CDF of ascending `values` as (value, fraction at or below)
/// steps, thinned to at most `points` points.
pub fn cdf(values: &[f64], points: usize) -> Vec<(f64, f64)> {
    let count = values.len();
    if count == 0 {
        return Vec::new();
    }
    let stride = count.div_ceil(points.max(1)).max(1);
    let mut out: Vec<(f64, f64)> =
        (0..count).step_by(stride).map(|i| (values[i], (i + 1) as f64 / count as f64)).collect();
    if out.last().is_none_or(|(_, fraction)| *fraction < 1.0) {
        out.push((values[count - 1], 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_definition() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&values).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max, p.min), (50.0, 95.0, 99.0, 100.0, 1.0));
        assert_eq!(nearest_rank(&[7.0], 99.0), 7.0);
        assert!(percentiles(&[]).is_none());
    }

    #[test]
    fn histograms_count_every_value_once() {
        let values = sorted([0.0, 1.0, 2.0, 2.5, 9.0, 10.0]);
        let bins = histogram(&values, 4);
        assert_eq!(bins.iter().map(|bin| bin.count).sum::<usize>(), values.len());
        assert_eq!(bins.last().unwrap().count, 2, "the top edge belongs to the last bin");
        assert_eq!(histogram(&sorted([3.0, 3.0]), 5).iter().map(|bin| bin.count).sum::<usize>(), 2);
    }

    #[test]
    fn cdfs_end_at_one_and_never_decrease() {
        let values = sorted((0..1000).map(|i| f64::from(i % 37)));
        let points = cdf(&values, 50);
        assert!(points.len() <= 51);
        assert_eq!(points.last().unwrap().1, 1.0);
        assert!(points.windows(2).all(|pair| pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1));
    }
}
