//! The campaign manifest that heads every results file
//! (`{"campaign":{...}}`, then one record per line): which scx ran it, which
//! scenarios (path, content hash, seeds) and which shard. `scx fuzz --resume`
//! continues only the campaign its file names; `scx merge` joins only shards
//! of one campaign and knows from the manifests which runs are missing.
//!
//! Invariant: a manifest depends only on the campaign's plan (never on
//! `--jobs`, the clock or the host), and the manifest of a merge of every
//! shard is the one an unsharded run writes, so the two files are equal
//! byte for byte.

use crate::fuzz::{self, Item};
use crate::record::{CampaignManifest, ManifestLine, ManifestSeed};
use crate::shard::{SeedRange, Shard};

/// The manifest as one results line (no newline).
pub fn to_line(manifest: &CampaignManifest) -> String {
    serde_json::to_string(&ManifestLine { campaign: manifest.clone() }).expect("a manifest always serialises")
}

/// The manifest on `line`, if the line is one.
pub fn from_line(line: &str) -> Result<CampaignManifest, String> {
    serde_json::from_str::<ManifestLine>(line.trim_end()).map(|line| line.campaign).map_err(|error| error.to_string())
}

/// A manifest read back, with its plan resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The manifest as written.
    pub manifest: CampaignManifest,
    /// Its shard.
    pub shard: Shard,
    /// Seeds of each scenario, indexed as `manifest.scenarios`.
    pub ranges: Vec<SeedRange>,
    /// The failures-file seeds it runs besides its ranges, ascending.
    pub extras: Vec<Item>,
}

impl Plan {
    /// Checks a manifest and resolves its plan; the error says what is wrong.
    pub fn new(manifest: CampaignManifest) -> Result<Self, String> {
        if manifest.format != CampaignManifest::FORMAT {
            return Err(format!(
                "campaign manifest format {} (this scx reads format {})",
                manifest.format,
                CampaignManifest::FORMAT
            ));
        }
        let shard: Shard = manifest.shard.parse().map_err(|error| format!("manifest shard: {error}"))?;
        if manifest.scenarios.windows(2).any(|pair| pair[0].path >= pair[1].path) {
            return Err("manifest scenarios are not sorted by path, each once".into());
        }
        let ranges = (manifest.scenarios.iter())
            .map(|scenario| {
                scenario
                    .seeds
                    .parse::<SeedRange>()
                    .map_err(|error| format!("manifest seeds of {}: {error}", scenario.path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut plan = Self { manifest, shard, ranges, extras: Vec::new() };
        let mut extras = Vec::new();
        for seed in &plan.manifest.replayed_first {
            let item = plan.item_of(&seed.scenario, seed.seed).ok_or_else(|| {
                format!("manifest replays {} seed {}, not one of its scenarios", seed.scenario, seed.seed)
            })?;
            extras.push(item);
        }
        if extras.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err("manifest replayed seeds are not sorted, each once".into());
        }
        plan.extras = extras;
        Ok(plan)
    }

    /// The item for a scenario path and seed, if the path is one of its scenarios.
    pub fn item_of(&self, path: &str, seed: u64) -> Option<Item> {
        let scenario = self.manifest.scenarios.binary_search_by(|entry| entry.path.as_str().cmp(path)).ok()?;
        Some(Item { seed, scenario })
    }

    /// Whether `item` is one this shard runs.
    pub fn owns(&self, item: Item) -> bool {
        self.ranges[item.scenario].owns(self.shard, item.seed) || self.extras.binary_search(&item).is_ok()
    }

    /// The shard of the whole campaign (`N` shards) that runs `item`: by
    /// its seed's place in the range, or shard 1 for a replayed seed.
    pub fn shard_running(&self, item: Item) -> u64 {
        let range = self.ranges[item.scenario];
        if range.owns(Shard::ALL, item.seed) { (item.seed - range.start) % self.shard.count + 1 } else { 1 }
    }

    /// Runs shard `index` of this campaign owes (replayed seeds aside).
    pub fn owed_by(&self, index: u64) -> u64 {
        let shard = Shard { index, count: self.shard.count };
        self.ranges.iter().map(|range| range.count(shard)).sum()
    }

    /// What the manifest names besides its shard: two shards of one
    /// campaign are equal here.
    fn campaign(&self) -> (&u32, &str, &[crate::record::ManifestScenario], &[crate::record::ManifestInvariant]) {
        (&self.manifest.format, &self.manifest.scx_version, &self.manifest.scenarios, &self.manifest.invariants)
    }
}

/// The first way `found` differs from `expected`, in words, or `None` if
/// they describe the same campaign; shards are compared only when
/// `same_shard`.
pub fn difference(found: &CampaignManifest, expected: &CampaignManifest, same_shard: bool) -> Option<String> {
    if found.scx_version != expected.scx_version {
        return Some(format!("it was written by scx {}, not scx {}", found.scx_version, expected.scx_version));
    }
    if found.invariants != expected.invariants {
        let names = |manifest: &CampaignManifest| -> String {
            manifest.invariants.iter().map(|invariant| invariant.name.as_str()).collect::<Vec<_>>().join(", ")
        };
        return Some(format!("it checks {}, not {}", names(found), names(expected)));
    }
    if same_shard && found.shard != expected.shard {
        return Some(format!("it is shard {}, not shard {}", found.shard, expected.shard));
    }
    let mut theirs = found.scenarios.iter().peekable();
    let mut ours = expected.scenarios.iter().peekable();
    loop {
        match (theirs.peek(), ours.peek()) {
            (None, None) => break,
            (Some(a), Some(b)) if a.path == b.path => {
                if a.hash != b.hash {
                    return Some(format!(
                        "it ran {} with content {}, not {} (the scenario changed)",
                        a.path, a.hash, b.hash
                    ));
                }
                if a.seeds != b.seeds {
                    return Some(format!("it runs {} seeds {}, not {}", a.path, a.seeds, b.seeds));
                }
                theirs.next();
                ours.next();
            }
            (Some(a), b) if b.is_none_or(|b| a.path < b.path) => {
                return Some(format!("it also runs {}", a.path));
            }
            (_, Some(b)) => return Some(format!("it does not run {}", b.path)),
            (Some(_), None) => unreachable!("handled by the arm above"),
        }
    }
    if same_shard && found.replayed_first != expected.replayed_first {
        return Some(format!(
            "it replays {} failures-file seeds outside the plan, not {} (the failures file changed)",
            found.replayed_first.len(),
            expected.replayed_first.len()
        ));
    }
    None
}

/// Shards of one campaign, read from their files' manifests: checked to
/// belong together, and joined into the manifest of the whole campaign.
#[derive(Debug)]
pub struct Shards {
    /// The first file's plan: the campaign, with its shard count.
    pub first: Plan,
    /// The whole campaign's plan (shard 1/1, every replayed seed).
    pub whole: Plan,
    /// Which shard indexes have a file.
    pub present: Vec<u64>,
}

impl Shards {
    /// Joins `plans` (each named by its file); the error names the file
    /// that does not belong.
    pub fn join(plans: &[(String, Plan)]) -> Result<Self, String> {
        let (first_name, first) = plans.first().ok_or("no results files")?;
        let mut present = Vec::new();
        let mut extras = Vec::new();
        for (name, plan) in plans {
            if plan.campaign() != first.campaign() || plan.shard.count != first.shard.count {
                let why = difference(&plan.manifest, &first.manifest, false).unwrap_or_else(|| {
                    format!(
                        "it is shard {}, one of {} shards, not of {}",
                        plan.shard, plan.shard.count, first.shard.count
                    )
                });
                return Err(format!(
                    "{name} is not a shard of the campaign {first_name} belongs to ({why}); merge the shards of one campaign"
                ));
            }
            present.push(plan.shard.index);
            extras.extend(
                plan.extras.iter().copied().filter(|item| !plan.ranges[item.scenario].owns(Shard::ALL, item.seed)),
            );
        }
        present.sort_unstable();
        present.dedup();
        extras.sort_unstable();
        extras.dedup();
        let mut manifest = first.manifest.clone();
        manifest.shard = Shard::ALL.to_string();
        manifest.replayed_first = (extras.iter())
            .map(|item| ManifestSeed { scenario: manifest.scenarios[item.scenario].path.clone(), seed: item.seed })
            .collect();
        let whole = Plan::new(manifest)?;
        Ok(Self { first: first.clone(), whole, present })
    }

    /// Every run of the whole campaign, in results order.
    pub fn whole_order(&self) -> impl Iterator<Item = Item> + use<> {
        fuzz::shard_order(&self.whole.ranges, Shard::ALL, self.whole.extras.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ManifestScenario;

    fn manifest(shard: &str, scenarios: &[(&str, &str)], replayed: &[(&str, u64)]) -> CampaignManifest {
        CampaignManifest {
            format: CampaignManifest::FORMAT,
            scx_version: "0.1.0".into(),
            shard: shard.into(),
            scenarios: (scenarios.iter())
                .map(|(path, seeds)| ManifestScenario {
                    path: (*path).into(),
                    hash: "h".into(),
                    seeds: (*seeds).into(),
                    params: Default::default(),
                })
                .collect(),
            replayed_first: (replayed.iter())
                .map(|(scenario, seed)| ManifestSeed { scenario: (*scenario).into(), seed: *seed })
                .collect(),
            invariants: Vec::new(),
        }
    }

    #[test]
    fn a_manifest_line_reads_back_and_a_record_is_not_one() {
        let m = manifest("2/3", &[("a.toml", "0..10")], &[]);
        let line = to_line(&m);
        assert!(line.starts_with("{\"campaign\":{\"format\":1,"), "{line}");
        assert_eq!(from_line(&line), Ok(m));
        assert!(from_line("{\"scx_version\":\"0.1.0\",\"seed\":1}").is_err());
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_reason() {
        let bad = |m: CampaignManifest| Plan::new(m).unwrap_err();
        assert!(bad(manifest("4/3", &[("a.toml", "0..10")], &[])).contains("shard"));
        assert!(bad(manifest("1/1", &[("a.toml", "9..2")], &[])).contains("seeds of a.toml"));
        assert!(bad(manifest("1/1", &[("b.toml", "0..1"), ("a.toml", "0..1")], &[])).contains("sorted"));
        assert!(bad(manifest("1/1", &[("a.toml", "0..1")], &[("z.toml", 3)])).contains("z.toml seed 3"));
        let mut m = manifest("1/1", &[("a.toml", "0..1")], &[]);
        m.format = 2;
        assert!(bad(m).contains("format 2"));
    }

    #[test]
    fn differences_name_the_first_thing_that_differs() {
        let ours = manifest("1/2", &[("a.toml", "0..10"), ("c.toml", "0..10")], &[]);
        let same = |m: &CampaignManifest| difference(m, &ours, true);
        assert_eq!(same(&ours), None);
        assert_eq!(
            same(&manifest("2/2", &[("a.toml", "0..10"), ("c.toml", "0..10")], &[])).unwrap(),
            "it is shard 2/2, not shard 1/2"
        );
        assert_eq!(difference(&manifest("2/2", &[("a.toml", "0..10"), ("c.toml", "0..10")], &[]), &ours, false), None);
        assert!(same(&manifest("1/2", &[("a.toml", "0..10")], &[])).unwrap().contains("it does not run c.toml"));
        assert!(
            same(&manifest("1/2", &[("a.toml", "0..10"), ("b.toml", "0..1"), ("c.toml", "0..10")], &[]))
                .unwrap()
                .contains("it also runs b.toml")
        );
        assert!(
            same(&manifest("1/2", &[("a.toml", "0..11"), ("c.toml", "0..10")], &[])).unwrap().contains("seeds 0..11")
        );
        let mut changed = ours.clone();
        changed.scenarios[1].hash = "other".into();
        assert!(same(&changed).unwrap().contains("the scenario changed"));
        changed = ours.clone();
        changed.scx_version = "9".into();
        assert_eq!(same(&changed).unwrap(), "it was written by scx 9, not scx 0.1.0");
    }

    #[test]
    fn shards_join_into_the_whole_campaign_and_say_who_runs_what() {
        let scenarios = [("a.toml", "0..10"), ("b.toml", "5..8")];
        let plans: Vec<(String, Plan)> = [("1/3", &[("a.toml", 20)][..]), ("3/3", &[][..])]
            .iter()
            .map(|(shard, replayed)| {
                (format!("shard {shard}"), Plan::new(manifest(shard, &scenarios, replayed)).unwrap())
            })
            .collect();
        let shards = Shards::join(&plans).unwrap();
        assert_eq!(shards.present, [1, 3]);
        assert_eq!(shards.whole.manifest.shard, "1/1");
        assert_eq!(shards.whole.manifest.replayed_first, [ManifestSeed { scenario: "a.toml".into(), seed: 20 }]);
        assert_eq!(shards.whole_order().count(), 10 + 3 + 1);
        let whole = &shards.whole;
        assert_eq!(shards.first.shard_running(Item { seed: 4, scenario: 0 }), 2);
        assert_eq!(shards.first.shard_running(Item { seed: 5, scenario: 1 }), 1, "b's range starts at 5");
        assert_eq!(shards.first.shard_running(Item { seed: 20, scenario: 0 }), 1, "replayed seeds are shard 1's");
        assert_eq!((1..=3).map(|index| shards.first.owed_by(index)).collect::<Vec<_>>(), [4 + 1, 3 + 1, 3 + 1]);
        assert!(whole.owns(Item { seed: 20, scenario: 0 }) && !whole.owns(Item { seed: 21, scenario: 0 }));

        let other = Plan::new(manifest("2/4", &scenarios, &[])).unwrap();
        let error = Shards::join(&[plans[0].clone(), ("d.jsonl".into(), other)]).unwrap_err();
        assert!(error.contains("d.jsonl is not a shard of the campaign shard 1/3 belongs to"), "{error}");
        let other = Plan::new(manifest("2/3", &[("a.toml", "0..10")], &[])).unwrap();
        let error = Shards::join(&[plans[0].clone(), ("e.jsonl".into(), other)]).unwrap_err();
        assert!(error.contains("it does not run b.toml"), "{error}");
    }
}
