//! Comparing two campaigns as criterion compares two benchmark runs: for a
//! metric both record, the change of its mean in percent, a bootstrap
//! confidence interval of that change, and a verdict at a stated
//! significance; and the scenario parameters that differ between the two.
//!
//! The bootstrap resamples each side's distribution (its HDR histogram, so
//! values are those of [`Distribution::buckets`], within 0.1%) with a
//! ChaCha8 stream of a fixed seed: the same inputs give the same interval
//! on every machine, and the report stays byte-identical.
//!
//! Every metric compared here is better when lower (convergence times,
//! bytes sent per byte missing, round trips), so a change whose whole
//! interval is below zero is an improvement.

use crate::distribution::Distribution;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Resamples drawn for an interval.
pub const RESAMPLES: usize = 1_000;
/// Two-sided significance of the verdicts: the interval is the central
/// `1 - SIGNIFICANCE` of the resampled changes.
pub const SIGNIFICANCE: f64 = 0.05;
/// Runs each side needs before a change is judged at all.
pub const MIN_RUNS: u64 = 5;
/// Values drawn per resample at most: a side with more runs is resampled
/// at this size (an m-out-of-n bootstrap), which widens its interval a
/// little, never narrows it, and keeps a million-run comparison fast.
pub const MAX_DRAWS: u64 = 20_000;
/// The resampling stream's seed (fixed: reports are deterministic).
const SEED: u64 = 0x5c0c_0a2e;

/// What a change says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval is below zero.
    Improved,
    /// The whole interval is above zero.
    Regressed,
    /// The interval holds zero.
    NoChange,
}

impl Verdict {
    /// As the report prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Improved => "improved",
            Self::Regressed => "regressed",
            Self::NoChange => "no change",
        }
    }
}

/// The change of one metric's mean from a base campaign to a variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    /// Mean of the base.
    pub base_mean: f64,
    /// Mean of the variant.
    pub variant_mean: f64,
    /// `variant_mean / base_mean - 1`.
    pub change: f64,
    /// Lower end of the interval of the change.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// What the interval says.
    pub verdict: Verdict,
}

/// The change from `base` to `variant`, or `None` when a side has fewer
/// than [`MIN_RUNS`] values or a mean of zero (no ratio to take).
pub fn change(base: &Distribution, variant: &Distribution) -> Option<Change> {
    if base.count() < MIN_RUNS || variant.count() < MIN_RUNS {
        return None;
    }
    let (base_mean, variant_mean) = (base.mean()?, variant.mean()?);
    if base_mean <= 0.0 {
        return None;
    }
    let (base, variant) = (Sampler::new(base), Sampler::new(variant));
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut changes: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let base = base.resampled_mean(&mut rng);
            let variant = variant.resampled_mean(&mut rng);
            // A resample whose base is all zeros is an unbounded change
            // (or none, if the variant's is too): dropping it would narrow
            // the interval towards "improved".
            if base > 0.0 {
                variant / base - 1.0
            } else if variant > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        })
        .collect();
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let rank = |p: f64| changes[((p * changes.len() as f64) as usize).min(changes.len() - 1)];
    let (low, high) = (rank(SIGNIFICANCE / 2.0), rank(1.0 - SIGNIFICANCE / 2.0));
    let verdict = if high < 0.0 {
        Verdict::Improved
    } else if low > 0.0 {
        Verdict::Regressed
    } else {
        Verdict::NoChange
    };
    Some(Change { base_mean, variant_mean, change: variant_mean / base_mean - 1.0, low, high, verdict })
}

/// Draws values from a distribution's buckets in proportion to their counts.
struct Sampler {
    /// (cumulative count, value), ascending.
    cumulative: Vec<(u64, u64)>,
    count: u64,
}

impl Sampler {
    fn new(distribution: &Distribution) -> Self {
        let mut below = 0;
        let cumulative = (distribution.buckets().into_iter())
            .map(|(value, count)| {
                below += count;
                (below, value)
            })
            .collect();
        Self { cumulative, count: below }
    }

    /// The mean of `count` values (at most [`MAX_DRAWS`]) drawn with replacement.
    fn resampled_mean(&self, rng: &mut ChaCha8Rng) -> f64 {
        let draws = self.count.min(MAX_DRAWS);
        let mut sum = 0u128;
        for _ in 0..draws {
            // A uniform rank in [0, count) (multiply-shift; the bias is below 2^-40 here).
            let rank = ((u128::from(rng.next_u64()) * u128::from(self.count)) >> 64) as u64;
            let at = self.cumulative.partition_point(|(below, _)| *below <= rank);
            sum += u128::from(self.cumulative[at].1);
        }
        sum as f64 / draws as f64
    }
}

/// The parameters that differ between two scenarios, key by key:
/// (key, base value, variant value), `None` where one side lacks the key.
pub fn parameter_diff<'a>(
    base: &'a BTreeMap<String, String>,
    variant: &'a BTreeMap<String, String>,
) -> Vec<(&'a str, Option<&'a str>, Option<&'a str>)> {
    let mut keys: Vec<&str> = base.keys().chain(variant.keys()).map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (a, b) = (base.get(key).map(String::as_str), variant.get(key).map(String::as_str));
            (a != b).then_some((key, a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distribution(values: impl IntoIterator<Item = u64>) -> Distribution {
        let mut distribution = Distribution::new();
        values.into_iter().for_each(|value| distribution.record(value));
        distribution
    }

    #[test]
    fn a_clear_shift_is_a_change_with_an_interval_around_it() {
        let base = distribution((0..200).map(|i| 1_000 + (i * 37) % 400));
        let slower = distribution((0..200).map(|i| 1_300 + (i * 53) % 400));
        let found = change(&base, &slower).unwrap();
        assert_eq!(found.verdict, Verdict::Regressed);
        assert!(found.low > 0.0 && found.low < found.change && found.change < found.high, "{found:?}");
        assert!((found.change - 0.25).abs() < 0.03, "about 25% slower: {found:?}");
        assert_eq!(change(&slower, &base).unwrap().verdict, Verdict::Improved);
    }

    #[test]
    fn resamples_with_a_zero_base_widen_the_interval_instead_of_vanishing() {
        // One rollback in twenty runs against one in every run: many base
        // resamples are all zeros, and each is an unbounded increase.
        let base = distribution((0..20).map(|i| u64::from(i == 0)));
        let variant = distribution([1; 20]);
        let found = change(&base, &variant).unwrap();
        assert_eq!(found.verdict, Verdict::Regressed, "{found:?}");
        assert_eq!(found.high, f64::INFINITY, "{found:?}");
    }

    #[test]
    fn the_same_distribution_is_no_change_and_the_result_is_reproducible() {
        let a = distribution((0..100).map(|i| 500 + (i * 7919) % 900));
        let found = change(&a, &a).unwrap();
        assert_eq!(found.verdict, Verdict::NoChange);
        assert!(found.low < 0.0 && found.high > 0.0, "{found:?}");
        assert_eq!(change(&a, &a), Some(found), "a fixed seed: the same interval every time");
    }

    #[test]
    fn too_few_runs_or_a_zero_mean_are_not_judged() {
        assert_eq!(change(&distribution([1, 2, 3]), &distribution([1, 2, 3, 4, 5])), None);
        assert_eq!(change(&distribution([0; 10]), &distribution([1; 10])), None);
    }

    #[test]
    fn parameter_diffs_list_changed_added_and_removed_keys() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let base = map(&[("network.loss", "0.01"), ("cluster.nodes", "3"), ("faults.1.kind", "crash")]);
        let variant = map(&[("network.loss", "0.2"), ("cluster.nodes", "3"), ("swarm.enabled", "true")]);
        assert_eq!(
            parameter_diff(&base, &variant),
            [
                ("faults.1.kind", Some("crash"), None),
                ("network.loss", Some("0.01"), Some("0.2")),
                ("swarm.enabled", None, Some("true"))
            ]
        );
        assert!(parameter_diff(&base, &base).is_empty());
    }
}
