//! Distributions in bounded memory: an HDR histogram with 3 significant
//! figures beside the exact count, minimum, maximum, sum and the greatest
//! common divisor of the values. Memory grows with the logarithm of the
//! largest value, never with the number of values, and two distributions
//! merge exactly (the histogram of the union is the sum of the histograms).
//!
//! Precision (see [`PRECISION`]): a percentile is the nearest-rank value of
//! the recorded values, looked up in the histogram. Values below
//! [`EXACT_BELOW`] have a bucket each, so their percentiles are exact. Above
//! it a bucket is at most 1/1024 of its values wide, and a percentile is
//! reported as the highest value its bucket can hold that is not above the
//! exact maximum and is a multiple of the values' common divisor: never
//! below the exact value and less than 0.1% above it. Values that are all
//! multiples of a step (convergence times are multiples of the sample
//! interval) come out exact while a bucket is no wider than the step.

use crate::stats::{Bin, Percentiles};
use hdrhistogram::Histogram;

/// Significant decimal figures the histograms keep.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// Values below this have a histogram bucket of their own, so their
/// percentiles are exact (3 significant figures give 2,048 unit buckets).
pub const EXACT_BELOW: u64 = 2048;

/// The precision of percentiles, as stated on report pages.
pub const PRECISION: &str = "Percentiles are nearest-rank values from HDR histograms with 3 significant figures: \
exact below 2,048, and otherwise never below the exact value and within 0.1% above it (p99 within 0.1%). \
Values that are all multiples of one step (convergence times are multiples of the sample interval) stay exact \
while a histogram bucket is no wider than the step, which holds up to 1,024 steps. Count, minimum, maximum and \
mean are exact.";

/// A distribution of `u64` values: HDR buckets for percentiles and charts,
/// exact figures beside them.
#[derive(Clone, Debug, Default)]
pub struct Distribution {
    /// Made on the first value, so an empty distribution holds no buckets.
    histogram: Option<Histogram<u64>>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
    /// Greatest common divisor of every value (0 while all are 0).
    gcd: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn new_histogram() -> Histogram<u64> {
    // Valid arguments: 3 significant figures is within HDR's 0..=5.
    let mut histogram = Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures are valid");
    histogram.auto(true);
    histogram
}

impl Distribution {
    /// An empty distribution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        let histogram = self.histogram.get_or_insert_with(new_histogram);
        // With auto-resize on, recording fails only if the bucket count
        // overflows usize, which 64 buckets of 1,024 cannot do.
        histogram.record(value).expect("an auto-resizing histogram takes every u64");
        self.min = if self.count == 0 { value } else { self.min.min(value) };
        self.max = self.max.max(value);
        self.count += 1;
        self.sum += u128::from(value);
        self.gcd = gcd(self.gcd, value);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        let Some(theirs) = &other.histogram else { return };
        match &mut self.histogram {
            // Auto-resizing histograms of the same precision always add.
            Some(ours) => ours.add(theirs).expect("histograms of one precision add"),
            None => self.histogram = Some(theirs.clone()),
        }
        self.min = if self.count == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
        self.gcd = gcd(self.gcd, other.gcd);
    }

    /// How many values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value (exact), if any.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value (exact), if any.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The exact mean, if any value.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value a bucket stands for: the largest value it can hold that
    /// is a multiple of the common divisor and within the exact min/max.
    /// Every value in the bucket is at most this, and when the bucket
    /// holds one multiple of the divisor this is exact.
    fn bucket_value(&self, histogram: &Histogram<u64>, value: u64) -> u64 {
        let low = histogram.lowest_equivalent(value).max(self.min);
        // The bucket of the maximum stands for the maximum itself (HDR caps
        // the top bucket's bound below u64::MAX).
        let high = if histogram.equivalent(value, self.max) {
            self.max
        } else {
            histogram.highest_equivalent(value).min(self.max)
        };
        let stepped = if self.gcd > 1 { high / self.gcd * self.gcd } else { high };
        if stepped >= low { stepped } else { high }
    }

    /// The nearest-rank value of rank `rank` (1-based, at most the count).
    fn value_at_rank(&self, rank: u64) -> Option<u64> {
        let histogram = self.histogram.as_ref()?;
        let mut below = 0u64;
        for step in histogram.iter_recorded() {
            below += step.count_since_last_iteration();
            if below >= rank {
                return Some(self.bucket_value(histogram, step.value_iterated_to()));
            }
        }
        self.max()
    }

    /// The nearest-rank percentile `per_ten_thousand` / 100 (for example
    /// 9_900 for p99), computed in integers: rank = ceil(p × n).
    pub fn percentile(&self, per_ten_thousand: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = (u128::from(self.count) * u128::from(per_ten_thousand.min(10_000))).div_ceil(10_000);
        self.value_at_rank((rank as u64).max(1))
    }

    /// Percentiles of the values divided by `scale` (1 for plain values,
    /// 1000 for thousandths).
    pub fn percentiles(&self, scale: f64) -> Option<Percentiles> {
        let at = |p| self.percentile(p).map_or(0.0, |v| v as f64 / scale);
        Some(Percentiles {
            count: usize::try_from(self.count).unwrap_or(usize::MAX),
            min: self.min()? as f64 / scale,
            p50: at(5_000),
            p95: at(9_500),
            p99: at(9_900),
            max: self.max()? as f64 / scale,
            mean: self.mean()? / scale,
        })
    }

    /// (value, count) per recorded bucket, ascending, with each bucket's
    /// value as in [`Distribution::percentile`].
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        let Some(histogram) = &self.histogram else { return Vec::new() };
        histogram
            .iter_recorded()
            .map(|step| (self.bucket_value(histogram, step.value_iterated_to()), step.count_since_last_iteration()))
            .collect()
    }

    /// The CDF as (value / scale, fraction at or below) steps, thinned to
    /// at most `points` + 1 points; the last point is (max, 1).
    pub fn cdf(&self, points: usize, scale: f64) -> Vec<(f64, f64)> {
        let buckets = self.buckets();
        let stride = buckets.len().div_ceil(points.max(1)).max(1);
        let mut below = 0u64;
        let mut out = Vec::new();
        for (index, (value, count)) in buckets.iter().enumerate() {
            below += count;
            if index % stride == 0 || index + 1 == buckets.len() {
                out.push((*value as f64 / scale, below as f64 / self.count as f64));
            }
        }
        out
    }

    /// The step every value is a multiple of (the sample interval, for
    /// convergence times), if any value was recorded.
    pub fn step(&self) -> Option<u64> {
        (self.count > 0).then_some(self.gcd.max(1))
    }

    /// At most `bins` equal-width bins from the exact min of the values,
    /// divided by `scale`. A bin is a whole number of steps wide (at least
    /// one), so values that come in steps never leave empty bins between
    /// full ones (a comb); each bucket's count goes to the bin of its value.
    pub fn bins(&self, bins: usize, scale: f64) -> Vec<Bin> {
        let (Some(min), Some(max), Some(step)) = (self.min(), self.max(), self.step()) else { return Vec::new() };
        let bins = bins.max(1) as u64;
        let width = (max - min).div_ceil(bins).div_ceil(step).max(1) * step;
        let used = ((max - min) / width + 1).min(bins) as usize;
        let mut counts = vec![0usize; used];
        for (value, count) in self.buckets() {
            let index = (value.saturating_sub(min) / width).min(used as u64 - 1) as usize;
            counts[index] += usize::try_from(count).unwrap_or(usize::MAX);
        }
        let edge = |i: usize| (min + width * i as u64) as f64 / scale;
        counts.into_iter().enumerate().map(|(i, count)| Bin { low: edge(i), high: edge(i + 1), count }).collect()
    }
}

impl PartialEq for Distribution {
    /// Equal figures and equal counts in every bucket, whatever the order
    /// values came in or how the histograms grew.
    fn eq(&self, other: &Self) -> bool {
        (self.count, self.min, self.max, self.sum, self.gcd)
            == (other.count, other.min, other.max, other.sum, other.gcd)
            && self.buckets() == other.buckets()
    }
}

impl Eq for Distribution {}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: impl IntoIterator<Item = u64>) -> Distribution {
        let mut distribution = Distribution::new();
        for value in values {
            distribution.record(value);
        }
        distribution
    }

    fn exact(values: &[u64], per_ten_thousand: u64) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = (sorted.len() as u64 * per_ten_thousand).div_ceil(10_000).max(1);
        sorted[rank as usize - 1]
    }

    #[test]
    fn small_values_have_exact_percentiles() {
        let values: Vec<u64> = (0..2048).rev().collect();
        let distribution = of(values.iter().copied());
        for p in [1, 5_000, 9_500, 9_900, 10_000] {
            assert_eq!(distribution.percentile(p), Some(exact(&values, p)), "p{p}");
        }
        assert_eq!((distribution.min(), distribution.max()), (Some(0), Some(2047)));
        assert_eq!(distribution.percentiles(1.0).unwrap().mean, 1023.5);
    }

    #[test]
    fn large_values_are_within_a_thousandth_and_never_below() {
        let values: Vec<u64> = (0..20_000u64).map(|i| 3 + i * i * 7919 % 50_000_000).collect();
        let distribution = of(values.iter().copied());
        for p in [1, 1_000, 5_000, 9_500, 9_900, 9_990, 10_000] {
            let (got, want) = (distribution.percentile(p).unwrap(), exact(&values, p));
            assert!(got >= want && (got - want) as f64 <= want as f64 / 1024.0, "p{p}: {got} against {want}");
        }
        assert_eq!(distribution.percentile(10_000), Some(*values.iter().max().unwrap()));
    }

    #[test]
    fn multiples_of_a_step_stay_exact_up_to_1024_steps() {
        let values: Vec<u64> = (0..5_000u64).map(|i| 100 * (1 + i * 31 % 1_024)).collect();
        let distribution = of(values.iter().copied());
        for p in (1..=10_000).step_by(37) {
            assert_eq!(distribution.percentile(p), Some(exact(&values, p)), "p{p}");
        }
    }

    #[test]
    fn merging_halves_equals_recording_all_and_extremes_fit() {
        let values: Vec<u64> = (0..3_000u64).map(|i| i * i * 104_729 % 9_000_000).collect();
        let (mut left, right) = (of(values[..1_000].iter().copied()), of(values[1_000..].iter().copied()));
        left.merge(&right);
        assert_eq!(left, of(values.iter().copied()));
        let mut empty = Distribution::new();
        empty.merge(&Distribution::new());
        assert_eq!(empty.percentiles(1.0), None);
        let extremes = of([0, u64::MAX]);
        assert_eq!(extremes.percentile(10_000), Some(u64::MAX));
        assert_eq!(extremes.percentile(5_000), Some(0));
    }

    #[test]
    fn cdfs_and_bins_count_every_value() {
        let distribution = of((0..10_000u64).map(|i| i % 3_000 * 13));
        let cdf = distribution.cdf(100, 1.0);
        assert!(cdf.len() <= 101);
        assert_eq!(cdf.last().unwrap(), &(2_999.0 * 13.0, 1.0));
        assert!(cdf.windows(2).all(|pair| pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1));
        let bins = distribution.bins(30, 1000.0);
        assert_eq!(bins.iter().map(|bin| bin.count).sum::<usize>(), 10_000);
        assert_eq!(bins[0].low, 0.0);
        // 38,987 / 30 rounds up to 100 steps of 13: bins of 1.3, the last holding the max.
        assert_eq!(bins.len(), 30);
        assert!(bins.iter().all(|bin| (bin.high - bin.low - 1.3).abs() < 1e-9));
        assert!(bins.last().unwrap().low <= 38.987 && 38.987 < bins.last().unwrap().high);
    }

    #[test]
    fn bins_are_whole_steps_wide_so_stepped_values_draw_no_comb() {
        // Convergence times in steps of a 100 ms sample interval, 2,000 to 2,500 ms.
        let distribution = of((0..60u64).map(|i| 2_000 + (i % 6) * 100));
        let bins = distribution.bins(30, 1.0);
        assert_eq!(bins.len(), 6, "six steps, six bins, none empty between them");
        assert!(bins.iter().all(|bin| bin.high - bin.low == 100.0 && bin.count == 10), "{bins:?}");
        assert_eq!(distribution.step(), Some(100));
        assert_eq!(of([5u64]).bins(30, 1.0).len(), 1);
        assert!(Distribution::new().bins(30, 1.0).is_empty());
    }
}
