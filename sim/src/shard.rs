//! Seed ranges and shards, as users of cargo-nextest, Kubernetes Indexed
//! Jobs and Slurm arrays expect them (ECOSYSTEM.md):
//! - ranges follow Rust: `A..B` excludes B, `A..=B` includes it;
//! - shards are 1-based `K/N`; seed i of `A..B` goes to shard
//!   `((i - A) mod N) + 1`, so the union of all shards is the whole range and
//!   no seed runs twice.

use std::fmt;
use std::str::FromStr;

/// A half-open range of seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// Seeds in the range.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seeds of `shard`, ascending, computed lazily (a range of ten
    /// million seeds costs nothing to plan).
    pub fn seeds(&self, shard: Shard) -> impl Iterator<Item = u64> + use<> {
        let first = self.start.saturating_add(shard.index - 1);
        // A step that does not fit a usize is larger than any range: one seed at most.
        let step = usize::try_from(shard.count).unwrap_or(usize::MAX);
        (first..self.end.max(first)).step_by(step)
    }

    /// How many seeds `shard` runs, without enumerating them.
    pub fn count(&self, shard: Shard) -> u64 {
        let first = self.start.saturating_add(shard.index - 1);
        if first >= self.end { 0 } else { (self.end - first - 1) / shard.count + 1 }
    }

    /// Whether `seed` is in the range and belongs to `shard`.
    pub fn owns(&self, shard: Shard, seed: u64) -> bool {
        (self.start..self.end).contains(&seed) && shard.owns(seed - self.start)
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse =
            |part: &str| part.trim().parse::<u64>().map_err(|_| format!("`{part}` is not a seed (a whole number)"));
        let (start, end) = if let Some((a, b)) = text.split_once("..=") {
            let end = parse(b)?.checked_add(1).ok_or_else(|| "the range end is too large".to_owned())?;
            (parse(a)?, end)
        } else if let Some((a, b)) = text.split_once("..") {
            (parse(a)?, parse(b)?)
        } else {
            return Err(format!("`{text}` is not a seed range; write A..B (B excluded) or A..=B"));
        };
        if end <= start {
            return Err(format!("the seed range `{text}` is empty"));
        }
        Ok(Self { start, end })
    }
}

/// The variables [`Shard::from_env`] reads.
pub const ENV_NAMES: [&str; 6] = [
    "SCX_SHARD",
    "JOB_COMPLETION_INDEX",
    "SCX_SHARD_COUNT",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
];

/// What `--shard` says: a fixed shard, or `auto` (from the environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// `--shard K/N`.
    Fixed(Shard),
    /// `--shard auto`: [`Shard::from_env`].
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "auto" { Ok(Self::Auto) } else { text.parse().map(Self::Fixed) }
    }
}

/// One shard of a campaign: `index` of `count`, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// The whole campaign in one shard.
    pub const ALL: Self = Self { index: 1, count: 1 };

    /// Whether the seed at `offset` from the range start is this shard's.
    pub fn owns(&self, offset: u64) -> bool {
        offset % self.count + 1 == self.index
    }

    /// The shard from a scale-out engine's environment, and which variables
    /// said so: `SCX_SHARD` (`K/N`, as a GitHub Actions matrix sets it),
    /// Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`, 0-based, with the
    /// count from `SCX_SHARD_COUNT`) or a contiguous Slurm array
    /// (`SLURM_ARRAY_TASK_ID`, `_MIN`, `_COUNT`), in that order. A variable
    /// that is set but malformed is an error naming it.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<(Self, String)>, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|value| value.trim().parse::<u64>().map_err(|_| format!("{name}={value:?} is not a whole number")))
                .transpose()
        };
        if let Some(value) = get("SCX_SHARD") {
            let shard = value.parse::<Self>().map_err(|error| format!("SCX_SHARD={value:?}: {error}"))?;
            return Ok(Some((shard, format!("SCX_SHARD={value}"))));
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = number("SCX_SHARD_COUNT")?.ok_or(
                "JOB_COMPLETION_INDEX is set but SCX_SHARD_COUNT is not (Kubernetes does not export the total)",
            )?;
            let shard = Self::new(index.saturating_add(1), count)
                .map_err(|error| format!("JOB_COMPLETION_INDEX={index} with SCX_SHARD_COUNT={count}: {error}"))?;
            return Ok(Some((shard, format!("JOB_COMPLETION_INDEX={index}, SCX_SHARD_COUNT={count}"))));
        }
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = number("SLURM_ARRAY_TASK_COUNT")?
                .ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
            let index =
                id.checked_sub(min).ok_or(format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"))?;
            let shard = Self::new(index.saturating_add(1), count).map_err(|error| {
                format!("SLURM_ARRAY_TASK_ID={id} (MIN {min}, COUNT {count}): {error}; the array must be contiguous")
            })?;
            return Ok(Some((
                shard,
                format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count}"),
            )));
        }
        Ok(None)
    }

    /// The engine variables that are set, of those [`Shard::from_env`] reads.
    pub fn env_names_set(get: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
        ENV_NAMES.iter().copied().filter(|name| get(name).is_some()).collect()
    }

    /// Shard `index` of `count`, checked.
    pub fn new(index: u64, count: u64) -> Result<Self, String> {
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {index}/{count} is out of range; shards are K/N with 1 <= K <= N"));
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) =
            text.split_once('/').ok_or_else(|| format!("`{text}` is not a shard; write K/N, e.g. 2/8"))?;
        let number =
            |part: &str| part.trim().parse::<u64>().map_err(|_| format!("`{part}` in `{text}` is not a number"));
        Self::new(number(index)?, number(count)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rust() {
        assert_eq!("3..7".parse::<SeedRange>().unwrap(), SeedRange { start: 3, end: 7 });
        assert_eq!("3..=7".parse::<SeedRange>().unwrap(), SeedRange { start: 3, end: 8 });
        assert!("7..3".parse::<SeedRange>().is_err());
        assert!("7".parse::<SeedRange>().is_err());
        assert!("a..b".parse::<SeedRange>().is_err());
    }

    #[test]
    fn shards_partition_the_range() {
        let range = SeedRange { start: 10, end: 47 };
        let mut all: Vec<u64> =
            (1..=4).flat_map(|index| range.seeds(Shard::new(index, 4).unwrap()).collect::<Vec<_>>()).collect();
        all.sort_unstable();
        assert_eq!(all, (10..47).collect::<Vec<_>>());
        assert_eq!(range.seeds(Shard::new(2, 4).unwrap()).next(), Some(11));
        for index in 1..=4 {
            let shard = Shard::new(index, 4).unwrap();
            assert_eq!(range.count(shard), range.seeds(shard).count() as u64);
            assert!(range.seeds(shard).all(|seed| range.owns(shard, seed)));
        }
        let huge = SeedRange { start: 0, end: 100_000_000 };
        assert_eq!(huge.count(Shard::new(3, 7).unwrap()), 14_285_714);
        assert_eq!(huge.seeds(Shard::new(3, 7).unwrap()).nth(2), Some(16));
        assert!("0/4".parse::<Shard>().is_err() && "5/4".parse::<Shard>().is_err() && "1/0".parse::<Shard>().is_err());
    }

    #[test]
    fn shards_come_from_kubernetes_and_slurm() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
        };
        let k8s = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0"), ("SCX_SHARD_COUNT", "3")])).unwrap();
        assert_eq!(k8s, Some((Shard { index: 1, count: 3 }, "JOB_COMPLETION_INDEX=0, SCX_SHARD_COUNT=3".into())));
        assert!(Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).is_err());
        let slurm = Shard::from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]));
        assert_eq!(slurm.unwrap().unwrap().0, Shard { index: 3, count: 4 });
        let matrix = Shard::from_env(env(&[("SCX_SHARD", "2/4"), ("JOB_COMPLETION_INDEX", "0")])).unwrap();
        assert_eq!(matrix, Some((Shard { index: 2, count: 4 }, "SCX_SHARD=2/4".into())), "SCX_SHARD comes first");
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
    }

    #[test]
    fn a_malformed_shard_variable_is_an_error_that_names_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
        };
        for (pairs, name) in [
            (&[("SCX_SHARD", "3")][..], "SCX_SHARD"),
            (&[("SCX_SHARD", "5/4")][..], "SCX_SHARD"),
            (&[("JOB_COMPLETION_INDEX", "one"), ("SCX_SHARD_COUNT", "3")][..], "JOB_COMPLETION_INDEX"),
            (&[("JOB_COMPLETION_INDEX", "3"), ("SCX_SHARD_COUNT", "3")][..], "JOB_COMPLETION_INDEX"),
            (&[("JOB_COMPLETION_INDEX", "0"), ("SCX_SHARD_COUNT", "x")][..], "SCX_SHARD_COUNT"),
            (
                &[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "4")][..],
                "SLURM_ARRAY_TASK_MIN",
            ),
            (&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "4")][..], "SLURM_ARRAY_TASK_ID"),
        ] {
            let error = Shard::from_env(env(pairs)).expect_err(name);
            assert!(error.contains(name), "{pairs:?}: {error}");
        }
        assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
        assert_eq!("2/3".parse::<ShardArg>(), Ok(ShardArg::Fixed(Shard { index: 2, count: 3 })));
        assert!("automatic".parse::<ShardArg>().is_err());
    }
}
