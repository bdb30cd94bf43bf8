//! The identity graph and its stitching: union-find over identifier links, under limits
//! and blocklists, with unified ids carried over from the previous run.
//!
//! Links are processed strongest first (by the priority of their weaker end), so when a
//! limit would break (two `customer_id`s in one person), the weak identifier that tried to
//! bridge them (a shared tablet, a placeholder phone) is the one set aside. Set-aside
//! identifiers link nothing, and the graph is stitched again without them, so one bad
//! bridge never merges two people even partially.

use std::collections::{BTreeMap, HashMap};

use crate::config::StitchRules;

/// Why an identifier is not part of any person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierStatus {
    Linked,
    Blocklisted,
    /// It bridged people that the limits keep apart (a shared device, a junk value).
    Contested,
}

impl IdentifierStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::Blocklisted => "blocklisted",
            Self::Contested => "contested",
        }
    }
}

/// A unified id issued by an earlier run.
#[derive(Debug, Clone)]
pub struct PreviousId {
    pub unified_id: String,
    /// When that id was first issued (µs since the epoch); older ids win merges.
    pub since: i64,
}

/// Identifiers and the links seen between them, interned.
#[derive(Debug, Default)]
pub struct IdentityGraph {
    type_names: Vec<String>,
    values_by_type: Vec<HashMap<Box<str>, u32>>,
    node_types: Vec<u16>,
    node_values: Vec<Box<str>>,
    links: Vec<(u32, u32)>,
    previous: HashMap<u32, PreviousId>,
}

/// One identifier in the result.
#[derive(Debug, Clone)]
pub struct StitchedIdentifier {
    pub id_type: String,
    pub id_value: String,
    pub unified_id: Option<String>,
    pub unified_since: Option<i64>,
    pub previous_unified_id: Option<String>,
    pub status: IdentifierStatus,
    /// Why it is not linked, or why its unified id changed since the previous run.
    pub reason: Option<String>,
    /// Identifiers in its person (0 when not linked).
    pub cluster_size: u32,
}

#[derive(Debug, Default)]
pub struct StitchStats {
    pub identifiers: usize,
    pub links: usize,
    pub persons: usize,
    pub refused_links: usize,
    pub passes: usize,
}

impl IdentityGraph {
    pub fn new() -> Self {
        Self::default()
    }

    fn type_id(&mut self, id_type: &str) -> u16 {
        if let Some(pos) = self.type_names.iter().position(|t| t == id_type) {
            return pos as u16;
        }
        self.type_names.push(id_type.to_string());
        self.values_by_type.push(HashMap::new());
        (self.type_names.len() - 1) as u16
    }

    /// The node of an identifier, created on first sight.
    pub fn node(&mut self, id_type: &str, id_value: &str) -> u32 {
        let t = self.type_id(id_type);
        if let Some(&node) = self.values_by_type[t as usize].get(id_value) {
            return node;
        }
        let node = self.node_values.len() as u32;
        let boxed: Box<str> = id_value.into();
        self.values_by_type[t as usize].insert(boxed.clone(), node);
        self.node_types.push(t);
        self.node_values.push(boxed);
        node
    }

    /// Two identifiers seen on one record. A link to itself just records the identifier.
    pub fn link(&mut self, a_type: &str, a_value: &str, b_type: &str, b_value: &str) {
        let a = self.node(a_type, a_value);
        let b = self.node(b_type, b_value);
        if a != b {
            self.links.push((a, b));
        }
    }

    /// The unified id an identifier had in the previous run. Unknown identifiers are
    /// ignored: they no longer appear in the input.
    pub fn remember(&mut self, id_type: &str, id_value: &str, previous: PreviousId) {
        let Some(t) = self.type_names.iter().position(|t| t == id_type) else {
            return;
        };
        if let Some(&node) = self.values_by_type[t].get(id_value) {
            self.previous.insert(node, previous);
        }
    }

    pub fn identifiers(&self) -> usize {
        self.node_values.len()
    }

    /// Stitches the graph. `now` (µs) dates the ids issued by this run.
    pub fn stitch(self, rules: &StitchRules, now: i64) -> (Vec<StitchedIdentifier>, StitchStats) {
        Stitcher::new(self, rules).run(now)
    }
}

struct Stitcher {
    type_names: Vec<String>,
    /// Nodes renumbered in canonical order: strongest type first, then by value, so the
    /// result does not depend on the order rows arrived in.
    types: Vec<u16>,
    values: Vec<Box<str>>,
    previous: Vec<Option<PreviousId>>,
    /// (strong, weak) node pairs in processing order.
    links: Vec<(u32, u32)>,
    status: Vec<IdentifierStatus>,
    reasons: Vec<Option<String>>,
    /// Limited types: (type, limit).
    limits: Vec<(u16, u32)>,
}

impl Stitcher {
    fn new(graph: IdentityGraph, rules: &StitchRules) -> Self {
        let type_rank: Vec<usize> = graph.type_names.iter().map(|t| rules.rank(t)).collect();
        let mut order: Vec<u32> = (0..graph.node_values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (ta, tb) = (graph.node_types[a as usize], graph.node_types[b as usize]);
            type_rank[ta as usize]
                .cmp(&type_rank[tb as usize])
                .then_with(|| graph.type_names[ta as usize].cmp(&graph.type_names[tb as usize]))
                .then_with(|| graph.node_values[a as usize].cmp(&graph.node_values[b as usize]))
        });
        let mut new_id = vec![0u32; order.len()];
        for (position, &old) in order.iter().enumerate() {
            new_id[old as usize] = position as u32;
        }
        let IdentityGraph {
            type_names,
            node_types,
            node_values,
            links,
            mut previous,
            ..
        } = graph;
        let mut values_by_old: Vec<Option<Box<str>>> = node_values.into_iter().map(Some).collect();
        let types: Vec<u16> = order.iter().map(|&o| node_types[o as usize]).collect();
        let values: Vec<Box<str>> = order
            .iter()
            .map(|&o| values_by_old[o as usize].take().expect("each node once"))
            .collect();
        let previous: Vec<Option<PreviousId>> = order.iter().map(|o| previous.remove(o)).collect();

        let rank_of = |node: u32| type_rank[types[node as usize] as usize];
        let mut links: Vec<(u32, u32)> = links
            .into_iter()
            .map(|(a, b)| {
                let (a, b) = (new_id[a as usize], new_id[b as usize]);
                (a.min(b), a.max(b))
            })
            .collect();
        links.sort_unstable_by_key(|&(strong, weak)| (rank_of(weak), strong, weak));
        links.dedup();

        let blocked: Vec<Option<String>> = types
            .iter()
            .zip(&values)
            .map(|(&t, v)| rules.blocked(&type_names[t as usize], v))
            .collect();
        let status = blocked
            .iter()
            .map(|b| match b {
                Some(_) => IdentifierStatus::Blocklisted,
                None => IdentifierStatus::Linked,
            })
            .collect();
        let limits = rules
            .limits
            .iter()
            .filter_map(|(t, &limit)| {
                type_names
                    .iter()
                    .position(|n| n == t)
                    .map(|pos| (pos as u16, limit))
            })
            .collect();
        Self {
            type_names,
            types,
            values,
            previous,
            links,
            status,
            reasons: blocked,
            limits,
        }
    }

    fn describe(&self, node: u32) -> String {
        format!(
            "{} {}",
            self.type_names[self.types[node as usize] as usize], self.values[node as usize]
        )
    }

    fn run(mut self, now: i64) -> (Vec<StitchedIdentifier>, StitchStats) {
        const MAX_PASSES: usize = 8;
        let mut stats = StitchStats {
            identifiers: self.values.len(),
            links: self.links.len(),
            ..StitchStats::default()
        };
        let mut forest;
        loop {
            stats.passes += 1;
            let last_pass = stats.passes == MAX_PASSES;
            let (pass_forest, newly_contested) = self.union_pass(!last_pass);
            forest = pass_forest;
            stats.refused_links = forest.refused;
            if newly_contested == 0 {
                break;
            }
        }
        self.assign_ids(forest, now, stats)
    }

    /// One union-find pass over the usable links. Returns the forest and how many
    /// identifiers this pass set aside (when `mark` is on).
    fn union_pass(&mut self, mark: bool) -> (Forest, usize) {
        let mut forest = Forest::new(self.values.len(), self.limits.len());
        for (slot, &(limited_type, _)) in self.limits.iter().enumerate() {
            for (node, &t) in self.types.iter().enumerate() {
                if t == limited_type && self.status[node] == IdentifierStatus::Linked {
                    forest.counts[node * self.limits.len() + slot] = 1;
                }
            }
        }
        let mut contested = 0;
        // Taken out for the loop, which marks identifiers on `self` as it goes.
        let links = std::mem::take(&mut self.links);
        for &(strong, weak) in &links {
            if self.status[strong as usize] != IdentifierStatus::Linked
                || self.status[weak as usize] != IdentifierStatus::Linked
            {
                continue;
            }
            let (rs, rw) = (forest.find(strong), forest.find(weak));
            if rs == rw {
                continue;
            }
            if let Some(slot) = forest.breaks_limit(rs, rw, &self.limits) {
                forest.refused += 1;
                if mark {
                    let (limited_type, limit) = self.limits[slot];
                    let type_name = &self.type_names[limited_type as usize];
                    self.status[weak as usize] = IdentifierStatus::Contested;
                    self.reasons[weak as usize] = Some(format!(
                        "refused link to {}: it would give one person more than {limit} {type_name} (identity.limits.{type_name})",
                        self.describe(strong)
                    ));
                    contested += 1;
                }
                continue;
            }
            forest.union(rs, rw, (strong, weak));
        }
        self.links = links;
        (forest, contested)
    }

    fn assign_ids(
        self,
        mut forest: Forest,
        now: i64,
        mut stats: StitchStats,
    ) -> (Vec<StitchedIdentifier>, StitchStats) {
        let n = self.values.len();
        // Members per person; a person's anchor is its strongest identifier (lowest id).
        let mut root_of = vec![u32::MAX; n];
        let mut cluster_of_root: HashMap<u32, usize> = HashMap::new();
        let mut anchors: Vec<u32> = Vec::new();
        let mut sizes: Vec<u32> = Vec::new();
        for node in 0..n as u32 {
            if self.status[node as usize] != IdentifierStatus::Linked {
                continue;
            }
            let root = forest.find(node);
            root_of[node as usize] = root;
            let cluster = *cluster_of_root.entry(root).or_insert_with(|| {
                anchors.push(node);
                sizes.push(0);
                anchors.len() - 1
            });
            sizes[cluster] += 1;
        }
        stats.persons = anchors.len();
        let cluster_of = |node: usize| -> Option<usize> {
            (root_of[node] != u32::MAX).then(|| cluster_of_root[&root_of[node]])
        };

        // Previous ids: how many identifiers of each cluster carried each of them.
        let mut carried: BTreeMap<(usize, &str), u32> = BTreeMap::new();
        let mut since_of: HashMap<&str, i64> = HashMap::new();
        for (node, previous) in self.previous.iter().enumerate() {
            let Some(previous) = previous else { continue };
            since_of.insert(&previous.unified_id, previous.since);
            if let Some(cluster) = cluster_of(node) {
                *carried.entry((cluster, &previous.unified_id)).or_default() += 1;
            }
        }
        // Oldest id first; an id goes to the cluster holding most of its identifiers.
        let mut candidates: Vec<(i64, &str, std::cmp::Reverse<u32>, u32, usize)> = carried
            .iter()
            .map(|(&(cluster, id), &count)| {
                (
                    since_of[id],
                    id,
                    std::cmp::Reverse(count),
                    anchors[cluster],
                    cluster,
                )
            })
            .collect();
        candidates.sort_unstable();
        let mut ids: Vec<Option<(String, i64)>> = vec![None; anchors.len()];
        let mut taken: std::collections::HashSet<String> =
            since_of.keys().map(|id| id.to_string()).collect();
        let mut kept: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (since, id, _, _, cluster) in candidates {
            if ids[cluster].is_none() && kept.insert(id) {
                ids[cluster] = Some((id.to_string(), since));
            }
        }
        for (cluster, slot) in ids.iter_mut().enumerate() {
            if slot.is_none() {
                let anchor = self.describe(anchors[cluster]);
                let mut salt = 0u32;
                let id = loop {
                    let candidate = new_unified_id(&anchor, salt);
                    if taken.insert(candidate.clone()) {
                        break candidate;
                    }
                    salt += 1;
                };
                *slot = Some((id, now));
            }
        }

        let merge_reasons = forest.merge_reasons(&self, &ids, &cluster_of);
        let split_causes = self.split_causes();
        let mut out = Vec::with_capacity(n);
        for node in 0..n {
            let previous_id = self.previous[node].as_ref().map(|p| p.unified_id.clone());
            let (unified, since, size) = match cluster_of(node) {
                Some(cluster) => {
                    let (id, since) = ids[cluster].clone().expect("every cluster has an id");
                    (Some(id), Some(since), sizes[cluster])
                }
                None => (None, None, 0),
            };
            let reason = match (&unified, &previous_id) {
                _ if self.status[node] != IdentifierStatus::Linked => self.reasons[node].clone(),
                (Some(now_id), Some(before)) if now_id != before => {
                    Some(if kept.contains(before.as_str()) {
                        self.split_reason(before, &split_causes)
                    } else {
                        merge_reasons
                            .get(before.as_str())
                            .cloned()
                            .unwrap_or_else(|| format!("merged into {now_id}, which is older"))
                    })
                }
                _ => None,
            };
            out.push(StitchedIdentifier {
                id_type: self.type_names[self.types[node] as usize].clone(),
                id_value: self.values[node].to_string(),
                unified_id: unified,
                unified_since: since,
                previous_unified_id: previous_id,
                status: self.status[node],
                reason,
                cluster_size: size,
            });
        }
        (out, stats)
    }

    /// Why identifiers no longer share the person they had: for each previous id, the
    /// first of its former identifiers that is now set aside.
    fn split_causes(&self) -> HashMap<&str, usize> {
        let mut causes = HashMap::new();
        for (node, previous) in self.previous.iter().enumerate() {
            if let Some(previous) = previous
                && self.status[node] != IdentifierStatus::Linked
            {
                causes.entry(previous.unified_id.as_str()).or_insert(node);
            }
        }
        causes
    }

    fn split_reason(&self, before: &str, causes: &HashMap<&str, usize>) -> String {
        match causes.get(before) {
            Some(&other) => format!(
                "split from {before}: {} no longer links ({})",
                self.describe(other as u32),
                self.reasons[other].as_deref().unwrap_or("set aside")
            ),
            None => {
                format!("split from {before}: the links that joined it are no longer in the input")
            }
        }
    }
}

/// A deterministic id from a person's strongest identifier.
fn new_unified_id(anchor: &str, salt: u32) -> String {
    // FNV-1a: stable across Rust versions and platforms, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in anchor.bytes().chain(salt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("u-{hash:016x}")
}

/// Union-find with union by size, path halving and per-root counts of limited types.
struct Forest {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// `counts[node * slots + slot]`: distinct values of limited type `slot` under a root.
    counts: Vec<u32>,
    slots: usize,
    refused: usize,
    /// The links that performed each union, in order (for merge reasons).
    unions: Vec<(u32, u32)>,
}

impl Forest {
    fn new(nodes: usize, slots: usize) -> Self {
        Self {
            parent: (0..nodes as u32).collect(),
            size: vec![1; nodes],
            counts: vec![0; nodes * slots],
            slots,
            refused: 0,
            unions: Vec::new(),
        }
    }

    fn find(&mut self, mut node: u32) -> u32 {
        while self.parent[node as usize] != node {
            let grandparent = self.parent[self.parent[node as usize] as usize];
            self.parent[node as usize] = grandparent;
            node = grandparent;
        }
        node
    }

    fn breaks_limit(&self, a: u32, b: u32, limits: &[(u16, u32)]) -> Option<usize> {
        (0..self.slots).find(|&slot| {
            self.counts[a as usize * self.slots + slot]
                + self.counts[b as usize * self.slots + slot]
                > limits[slot].1
        })
    }

    fn union(&mut self, a: u32, b: u32, link: (u32, u32)) {
        let (big, small) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        for slot in 0..self.slots {
            self.counts[big as usize * self.slots + slot] +=
                self.counts[small as usize * self.slots + slot];
        }
        self.unions.push(link);
    }

    /// For each previous id absorbed by a merge: the first link that joined it to the
    /// identifiers of the id that survived.
    fn merge_reasons(
        &self,
        stitcher: &Stitcher,
        ids: &[Option<(String, i64)>],
        cluster_of: &dyn Fn(usize) -> Option<usize>,
    ) -> HashMap<String, String> {
        let mut reasons = HashMap::new();
        for &(strong, weak) in &self.unions {
            let (Some(a), Some(b)) = (
                stitcher.previous[strong as usize].as_ref(),
                stitcher.previous[weak as usize].as_ref(),
            ) else {
                continue;
            };
            if a.unified_id == b.unified_id {
                continue;
            }
            let Some(cluster) = cluster_of(strong as usize) else {
                continue;
            };
            let survivor = &ids[cluster].as_ref().expect("assigned").0;
            for absorbed in [&a.unified_id, &b.unified_id] {
                if absorbed != survivor && !reasons.contains_key(absorbed) {
                    reasons.insert(
                        absorbed.clone(),
                        format!(
                            "merged {absorbed} into {survivor}: {} and {} were seen on one record",
                            stitcher.describe(strong),
                            stitcher.describe(weak)
                        ),
                    );
                }
            }
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IdentityConfig;

    fn rules(extra: &str) -> StitchRules {
        let config: IdentityConfig = toml::from_str(extra).unwrap();
        StitchRules::compile(&config, "test").unwrap()
    }

    fn ids_of(result: &[StitchedIdentifier], id_type: &str, value: &str) -> Option<String> {
        result
            .iter()
            .find(|r| r.id_type == id_type && r.id_value == value)
            .and_then(|r| r.unified_id.clone())
    }

    fn graph(links: &[(&str, &str, &str, &str)]) -> IdentityGraph {
        let mut g = IdentityGraph::new();
        for (at, av, bt, bv) in links {
            g.link(at, av, bt, bv);
        }
        g
    }

    #[test]
    fn links_join_identifiers_transitively() {
        let g = graph(&[
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "a@x.fr", "anonymous_id", "cookie1"),
            ("customer_id", "C2", "customer_id", "C2"),
        ]);
        let (result, stats) = g.stitch(&rules(""), 0);
        assert_eq!(stats.persons, 2);
        let c1 = ids_of(&result, "customer_id", "C1");
        assert_eq!(c1, ids_of(&result, "anonymous_id", "cookie1"));
        assert_ne!(c1, ids_of(&result, "customer_id", "C2"));
    }

    #[test]
    fn a_shared_device_never_merges_two_customers() {
        let g = graph(&[
            ("customer_id", "C1", "device_id", "tablet"),
            ("customer_id", "C2", "device_id", "tablet"),
            ("customer_id", "C1", "email", "a@x.fr"),
            ("customer_id", "C2", "email", "b@x.fr"),
        ]);
        let (result, stats) = g.stitch(&rules(""), 0);
        assert_eq!(stats.persons, 2);
        let tablet = result.iter().find(|r| r.id_value == "tablet").unwrap();
        assert_eq!(tablet.status, IdentifierStatus::Contested);
        assert!(tablet.unified_id.is_none());
        assert!(
            tablet
                .reason
                .as_deref()
                .unwrap()
                .contains("identity.limits.customer_id")
        );
        assert_ne!(
            ids_of(&result, "email", "a@x.fr"),
            ids_of(&result, "email", "b@x.fr")
        );
    }

    #[test]
    fn blocklisted_values_link_nothing() {
        let g = graph(&[
            ("loyalty_id", "L1", "email", "test@test.com"),
            ("loyalty_id", "L2", "email", "test@test.com"),
        ]);
        let (result, _) = g.stitch(&rules("[blocklist.email]\nvalues = ['test@test.com']"), 0);
        assert_ne!(
            ids_of(&result, "loyalty_id", "L1"),
            ids_of(&result, "loyalty_id", "L2")
        );
        let junk = result
            .iter()
            .find(|r| r.id_value == "test@test.com")
            .unwrap();
        assert_eq!(junk.status, IdentifierStatus::Blocklisted);
    }

    #[test]
    fn ids_are_deterministic_whatever_the_input_order() {
        let links = [
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "b@x.fr", "phone", "+33600000001"),
            ("anonymous_id", "k", "email", "b@x.fr"),
        ];
        let (first, _) = graph(&links).stitch(&rules(""), 0);
        let mut reversed = links;
        reversed.reverse();
        let (second, _) = graph(&reversed).stitch(&rules(""), 0);
        for r in &first {
            assert_eq!(r.unified_id, ids_of(&second, &r.id_type, &r.id_value));
        }
    }

    #[test]
    fn merges_keep_the_older_id_and_splits_are_explained() {
        let mut g = graph(&[
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "a@x.fr", "anonymous_id", "k"),
            ("customer_id", "C9", "anonymous_id", "k2"),
        ]);
        // Before: C1 was u-old (older), cookie k its own person u-new.
        g.remember(
            "customer_id",
            "C1",
            PreviousId {
                unified_id: "u-old".into(),
                since: 1,
            },
        );
        g.remember(
            "email",
            "a@x.fr",
            PreviousId {
                unified_id: "u-old".into(),
                since: 1,
            },
        );
        g.remember(
            "anonymous_id",
            "k",
            PreviousId {
                unified_id: "u-new".into(),
                since: 5,
            },
        );
        let (result, _) = g.stitch(&rules(""), 10);
        let cookie = result.iter().find(|r| r.id_value == "k").unwrap();
        assert_eq!(cookie.unified_id.as_deref(), Some("u-old"));
        assert!(
            cookie
                .reason
                .as_deref()
                .unwrap()
                .contains("merged u-new into u-old")
        );
        // A new person gets a new id dated now.
        let c9 = result.iter().find(|r| r.id_value == "C9").unwrap();
        assert_eq!(c9.unified_since, Some(10));

        // Tightening the rules splits the cookie away again.
        let mut again = graph(&[
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "a@x.fr", "anonymous_id", "k"),
        ]);
        for r in &result {
            if let Some(id) = &r.unified_id {
                again.remember(
                    &r.id_type,
                    &r.id_value,
                    PreviousId {
                        unified_id: id.clone(),
                        since: 1,
                    },
                );
            }
        }
        let (split, _) = again.stitch(&rules("[blocklist.email]\nvalues = ['a@x.fr']"), 20);
        let cookie = split.iter().find(|r| r.id_value == "k").unwrap();
        assert_ne!(cookie.unified_id.as_deref(), Some("u-old"));
        let reason = cookie.reason.as_deref().unwrap();
        assert!(
            reason.starts_with("split from u-old: email a@x.fr no longer links"),
            "{reason}"
        );
        assert_eq!(
            ids_of(&split, "customer_id", "C1").as_deref(),
            Some("u-old")
        );
    }
}
