//! The identity graph and its stitching: union-find over identifier links, under limits
//! and blocklists, with unified ids carried over from the previous run.
//!
//! Links are processed strongest first (by the priority of their weaker end), so when a
//! limit would break (two `customer_id`s in one person), the weak identifier that tried to
//! bridge them (a shared tablet, a placeholder phone) is the one set aside. Set-aside
//! identifiers link nothing, and the graph is stitched again without them, so one bad
//! bridge never merges two people even partially.
//!
//! Sized for tens of millions of links on one core: identifiers are interned once into an
//! arena, everything after that works on dense `u32` node numbers, and the result is
//! columnar (no allocation per identifier).

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use hashbrown::HashTable;
use twox_hash::XxHash64;

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

const NONE: u32 = u32::MAX;

/// Strings stored back to back, numbered in insertion order, found again by content.
#[derive(Debug, Default)]
struct Interner {
    bytes: String,
    ends: Vec<usize>,
    hashes: Vec<u64>,
    index: HashTable<u32>,
}

impl Interner {
    fn hash(tag: u16, text: &str) -> u64 {
        // xxHash64 with a fixed seed: stable across runs and platforms, so the canonical
        // order (and the ids derived from it) is too.
        let mut hasher = XxHash64::with_seed(0);
        hasher.write(&tag.to_le_bytes());
        hasher.write(text.as_bytes());
        hasher.finish()
    }

    fn get(&self, i: u32) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i as usize - 1] };
        &self.bytes[start..self.ends[i as usize]]
    }

    fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.index.find(hash, |&i| is(i)).copied()
    }

    /// The number of `text` (tagged `tag`), and whether it was new.
    fn intern(&mut self, tag: u16, text: &str, same_tag: impl Fn(u32) -> bool) -> (u32, bool) {
        let hash = Self::hash(tag, text);
        if let Some(i) = self.find(hash, |i| same_tag(i) && self.get(i) == text) {
            return (i, false);
        }
        let i = self.ends.len() as u32;
        self.bytes.push_str(text);
        self.ends.push(self.bytes.len());
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.index.insert_unique(hash, i, |&j| hashes[j as usize]);
        (i, true)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Identifiers and the links seen between them, interned.
#[derive(Debug, Default)]
pub struct IdentityGraph {
    type_names: Vec<String>,
    values: Interner,
    node_types: Vec<u16>,
    links: Vec<(u32, u32)>,
    /// Previous unified ids, interned; `previous[node]` indexes them.
    previous_ids: Interner,
    previous_since: Vec<i64>,
    previous: Vec<u32>,
}

/// One identifier of the result, borrowed from [`Stitched`].
#[derive(Debug, Clone, Copy)]
pub struct StitchedIdentifier<'a> {
    pub id_type: &'a str,
    pub id_value: &'a str,
    pub unified_id: Option<&'a str>,
    pub unified_since: Option<i64>,
    pub previous_unified_id: Option<&'a str>,
    pub status: IdentifierStatus,
    /// Why it is not linked, or why its unified id changed since the previous run.
    pub reason: Option<&'a str>,
    /// Identifiers in its person (0 when not linked).
    pub cluster_size: u32,
}

/// The stitch result, one entry per identifier in canonical order, stored by column.
#[derive(Debug)]
pub struct Stitched {
    type_names: Vec<String>,
    values: Interner,
    /// `values` numbers of the identifiers, in canonical order.
    order: Vec<u32>,
    types: Vec<u16>,
    cluster: Vec<u32>,
    cluster_ids: Vec<String>,
    cluster_since: Vec<i64>,
    cluster_sizes: Vec<u32>,
    previous_ids: Interner,
    previous: Vec<u32>,
    status: Vec<IdentifierStatus>,
    reasons: Vec<Option<String>>,
}

impl Stitched {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, i: usize) -> StitchedIdentifier<'_> {
        let cluster = self.cluster[i];
        let linked = cluster != NONE;
        let previous = self.previous[i];
        StitchedIdentifier {
            id_type: &self.type_names[self.types[i] as usize],
            id_value: self.values.get(self.order[i]),
            unified_id: linked.then(|| self.cluster_ids[cluster as usize].as_str()),
            unified_since: linked.then(|| self.cluster_since[cluster as usize]),
            previous_unified_id: (previous != NONE).then(|| self.previous_ids.get(previous)),
            status: self.status[i],
            reason: self.reasons[i].as_deref(),
            cluster_size: if linked {
                self.cluster_sizes[cluster as usize]
            } else {
                0
            },
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = StitchedIdentifier<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }
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
        (self.type_names.len() - 1) as u16
    }

    /// The node of an identifier, created on first sight.
    pub fn node(&mut self, id_type: &str, id_value: &str) -> u32 {
        let t = self.type_id(id_type);
        let types = &self.node_types;
        let (node, new) = self.values.intern(t, id_value, |i| types[i as usize] == t);
        if new {
            self.node_types.push(t);
            self.previous.push(NONE);
        }
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
        let t = t as u16;
        let hash = Interner::hash(t, id_value);
        let (types, values) = (&self.node_types, &self.values);
        let Some(node) = values.find(hash, |i| {
            types[i as usize] == t && values.get(i) == id_value
        }) else {
            return;
        };
        let (id, new) = self.previous_ids.intern(0, &previous.unified_id, |_| true);
        if new {
            self.previous_since.push(previous.since);
        }
        self.previous[node as usize] = id;
    }

    pub fn identifiers(&self) -> usize {
        self.values.len()
    }

    /// Stitches the graph. `now` (µs) dates the ids issued by this run.
    pub fn stitch(self, rules: &StitchRules, now: i64) -> (Stitched, StitchStats) {
        Stitcher::new(self, rules).run(now)
    }
}

struct Stitcher {
    type_names: Vec<String>,
    values: Interner,
    /// Canonical order: strongest type first, then by a stable hash of the value (then the
    /// value), so the result does not depend on the order rows arrived in. `order[position]`
    /// is the interned value; everything below is indexed by position.
    order: Vec<u32>,
    types: Vec<u16>,
    previous_ids: Interner,
    previous_since: Vec<i64>,
    previous: Vec<u32>,
    /// (strong, weak) positions in processing order.
    links: Vec<(u32, u32)>,
    status: Vec<IdentifierStatus>,
    reasons: Vec<Option<String>>,
    /// Limited types: (type, limit).
    limits: Vec<(u16, u32)>,
}

impl Stitcher {
    fn new(graph: IdentityGraph, rules: &StitchRules) -> Self {
        let IdentityGraph {
            type_names,
            values,
            node_types,
            links,
            previous_ids,
            previous_since,
            previous,
        } = graph;
        // Types ranked by priority, then by name.
        let mut type_order: Vec<u16> = (0..type_names.len() as u16).collect();
        type_order.sort_by(|&a, &b| {
            let (a, b) = (&type_names[a as usize], &type_names[b as usize]);
            rules.rank(a).cmp(&rules.rank(b)).then_with(|| a.cmp(b))
        });
        let mut type_position = vec![0u16; type_names.len()];
        for (position, &t) in type_order.iter().enumerate() {
            type_position[t as usize] = position as u16;
        }
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let key = |n: u32| {
                (
                    type_position[node_types[n as usize] as usize],
                    values.hashes[n as usize],
                )
            };
            key(a)
                .cmp(&key(b))
                .then_with(|| values.get(a).cmp(values.get(b)))
        });
        let mut position_of = vec![0u32; order.len()];
        for (position, &node) in order.iter().enumerate() {
            position_of[node as usize] = position as u32;
        }
        let types: Vec<u16> = order.iter().map(|&n| node_types[n as usize]).collect();
        let previous: Vec<u32> = order.iter().map(|&n| previous[n as usize]).collect();

        // Links grouped by the rank of their weaker end, each group in canonical order.
        let rank_of_type: Vec<usize> = type_names.iter().map(|t| rules.rank(t)).collect();
        let ranks = rank_of_type.iter().copied().max().unwrap_or(0) + 1;
        let mut by_rank: Vec<Vec<u64>> = vec![Vec::new(); ranks];
        for (a, b) in links {
            let (a, b) = (position_of[a as usize], position_of[b as usize]);
            let (strong, weak) = (a.min(b), a.max(b));
            let rank = rank_of_type[types[weak as usize] as usize];
            by_rank[rank].push((u64::from(strong) << 32) | u64::from(weak));
        }
        let mut links = Vec::new();
        for mut group in by_rank {
            group.sort_unstable();
            group.dedup();
            links.extend(group.into_iter().map(|l| ((l >> 32) as u32, l as u32)));
        }

        let reasons: Vec<Option<String>> = order
            .iter()
            .zip(&types)
            .map(|(&n, &t)| rules.blocked(&type_names[t as usize], values.get(n)))
            .collect();
        let status = reasons
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
            values,
            order,
            types,
            previous_ids,
            previous_since,
            previous,
            links,
            status,
            reasons,
            limits,
        }
    }

    fn value(&self, node: u32) -> &str {
        self.values.get(self.order[node as usize])
    }

    fn describe(&self, node: u32) -> String {
        format!(
            "{} {}",
            self.type_names[self.types[node as usize] as usize],
            self.value(node)
        )
    }

    fn previous_id(&self, node: u32) -> Option<&str> {
        let id = self.previous[node as usize];
        (id != NONE).then(|| self.previous_ids.get(id))
    }

    fn run(mut self, now: i64) -> (Stitched, StitchStats) {
        const MAX_PASSES: usize = 8;
        let mut stats = StitchStats {
            identifiers: self.order.len(),
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
        let mut forest = Forest::new(self.order.len(), self.limits.len());
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
        mut self,
        mut forest: Forest,
        now: i64,
        mut stats: StitchStats,
    ) -> (Stitched, StitchStats) {
        let n = self.order.len();
        // Clusters numbered in canonical order of their anchor, a person's strongest
        // identifier (its lowest position).
        let mut cluster = vec![NONE; n];
        let mut cluster_of_root = vec![NONE; n];
        let mut anchors: Vec<u32> = Vec::new();
        let mut sizes: Vec<u32> = Vec::new();
        for node in 0..n as u32 {
            if self.status[node as usize] != IdentifierStatus::Linked {
                continue;
            }
            let root = forest.find(node) as usize;
            if cluster_of_root[root] == NONE {
                cluster_of_root[root] = anchors.len() as u32;
                anchors.push(node);
                sizes.push(0);
            }
            cluster[node as usize] = cluster_of_root[root];
            sizes[cluster_of_root[root] as usize] += 1;
        }
        stats.persons = anchors.len();

        // Previous ids: how many identifiers of each cluster carried each of them.
        let mut carried: Vec<(u32, u32)> = (0..n)
            .filter(|&node| self.previous[node] != NONE && cluster[node] != NONE)
            .map(|node| (cluster[node], self.previous[node]))
            .collect();
        carried.sort_unstable();
        // (since, id, fewer carriers last, cluster): oldest id first; an id goes to the
        // cluster holding most of its identifiers, ties to the earlier cluster.
        let mut candidates: Vec<(i64, u32, std::cmp::Reverse<u32>, u32)> = Vec::new();
        for run in carried.chunk_by(|a, b| a == b) {
            let (cluster, id) = run[0];
            candidates.push((
                self.previous_since[id as usize],
                id,
                std::cmp::Reverse(run.len() as u32),
                cluster,
            ));
        }
        // Ties on `since` are broken by the id text, not by interning order.
        candidates.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.previous_ids.get(a.1).cmp(self.previous_ids.get(b.1)))
                .then_with(|| a.2.cmp(&b.2))
                .then_with(|| a.3.cmp(&b.3))
        });
        let clusters = anchors.len();
        let mut kept_id = vec![NONE; clusters];
        let mut id_kept = vec![false; self.previous_ids.len()];
        for &(_, id, _, cluster) in &candidates {
            if kept_id[cluster as usize] == NONE && !id_kept[id as usize] {
                kept_id[cluster as usize] = id;
                id_kept[id as usize] = true;
            }
        }
        // New ids never collide with an id issued before.
        let mut taken: HashSet<u64> = (0..self.previous_ids.len() as u32)
            .filter_map(|id| parse_unified_id(self.previous_ids.get(id)))
            .collect();
        let mut cluster_ids = Vec::with_capacity(clusters);
        let mut cluster_since = Vec::with_capacity(clusters);
        for (c, &anchor) in anchors.iter().enumerate() {
            if kept_id[c] != NONE {
                let id = kept_id[c];
                cluster_ids.push(self.previous_ids.get(id).to_string());
                cluster_since.push(self.previous_since[id as usize]);
                continue;
            }
            let type_name = &self.type_names[self.types[anchor as usize] as usize];
            let value = self.value(anchor);
            let mut salt = 0u32;
            let hash = loop {
                let candidate = anchor_hash(type_name, value, salt);
                if taken.insert(candidate) {
                    break candidate;
                }
                salt += 1;
            };
            cluster_ids.push(format!("u-{hash:016x}"));
            cluster_since.push(now);
        }

        let merge_reasons = forest.merge_reasons(&self, &cluster, &cluster_ids);
        let split_causes = self.split_causes();
        for node in 0..n {
            if self.status[node] != IdentifierStatus::Linked {
                continue;
            }
            let Some(before) = self.previous_id(node as u32) else {
                continue;
            };
            let now_id = &cluster_ids[cluster[node] as usize];
            if now_id == before {
                continue;
            }
            let before_id = self.previous[node];
            let reason = if id_kept[before_id as usize] {
                self.split_reason(before, split_causes.get(&before_id).copied())
            } else {
                merge_reasons
                    .get(&before_id)
                    .cloned()
                    .unwrap_or_else(|| format!("merged into {now_id}, which is older"))
            };
            self.reasons[node] = Some(reason);
        }
        let Stitcher {
            type_names,
            values,
            order,
            types,
            previous_ids,
            previous,
            status,
            reasons,
            ..
        } = self;
        let stitched = Stitched {
            type_names,
            values,
            order,
            types,
            cluster,
            cluster_ids,
            cluster_since,
            cluster_sizes: sizes,
            previous_ids,
            previous,
            status,
            reasons,
        };
        (stitched, stats)
    }

    /// Why identifiers no longer share the person they had: for each previous id, the
    /// first of its former identifiers that is now set aside.
    fn split_causes(&self) -> HashMap<u32, u32> {
        let mut causes = HashMap::new();
        for (node, &previous) in self.previous.iter().enumerate() {
            if previous != NONE && self.status[node] != IdentifierStatus::Linked {
                causes.entry(previous).or_insert(node as u32);
            }
        }
        causes
    }

    fn split_reason(&self, before: &str, cause: Option<u32>) -> String {
        match cause {
            Some(other) => format!(
                "split from {before}: {} no longer links ({})",
                self.describe(other),
                self.reasons[other as usize]
                    .as_deref()
                    .unwrap_or("set aside")
            ),
            None => {
                format!("split from {before}: the links that joined it are no longer in the input")
            }
        }
    }
}

/// FNV-1a of a person's strongest identifier (`"<type> <value>"`) and a salt: stable across
/// Rust versions and platforms, unlike the std hasher.
fn anchor_hash(type_name: &str, value: &str, salt: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = type_name
        .bytes()
        .chain(std::iter::once(b' '))
        .chain(value.bytes())
        .chain(salt.to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The hash inside an id this module issued (`u-<16 hex digits>`).
fn parse_unified_id(id: &str) -> Option<u64> {
    let hex = id.strip_prefix("u-")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
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
        cluster: &[u32],
        cluster_ids: &[String],
    ) -> HashMap<u32, String> {
        let mut reasons = HashMap::new();
        for &(strong, weak) in &self.unions {
            let (a, b) = (
                stitcher.previous[strong as usize],
                stitcher.previous[weak as usize],
            );
            if a == NONE || b == NONE || a == b || cluster[strong as usize] == NONE {
                continue;
            }
            let survivor = cluster_ids[cluster[strong as usize] as usize].as_str();
            for absorbed in [a, b] {
                let absorbed_id = stitcher.previous_ids.get(absorbed);
                if absorbed_id != survivor && !reasons.contains_key(&absorbed) {
                    reasons.insert(
                        absorbed,
                        format!(
                            "merged {absorbed_id} into {survivor}: {} and {} were seen on one record",
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

    fn ids_of(result: &Stitched, id_type: &str, value: &str) -> Option<String> {
        result
            .iter()
            .find(|r| r.id_type == id_type && r.id_value == value)
            .and_then(|r| r.unified_id.map(str::to_string))
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
        for r in first.iter() {
            assert_eq!(
                r.unified_id.map(str::to_string),
                ids_of(&second, r.id_type, r.id_value)
            );
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
        assert_eq!(cookie.unified_id, Some("u-old"));
        assert!(cookie.reason.unwrap().contains("merged u-new into u-old"));
        // A new person gets a new id dated now.
        let c9 = result.iter().find(|r| r.id_value == "C9").unwrap();
        assert_eq!(c9.unified_since, Some(10));

        // Tightening the rules splits the cookie away again.
        let mut again = graph(&[
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "a@x.fr", "anonymous_id", "k"),
        ]);
        for r in result.iter() {
            if let Some(id) = r.unified_id {
                again.remember(
                    r.id_type,
                    r.id_value,
                    PreviousId {
                        unified_id: id.to_string(),
                        since: 1,
                    },
                );
            }
        }
        let (split, _) = again.stitch(&rules("[blocklist.email]\nvalues = ['a@x.fr']"), 20);
        let cookie = split.iter().find(|r| r.id_value == "k").unwrap();
        assert_ne!(cookie.unified_id, Some("u-old"));
        let reason = cookie.reason.unwrap();
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
