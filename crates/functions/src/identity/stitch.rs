//! The identity graph and its stitching: union-find over identifier links, under limits
//! and blocklists, with unified ids carried over from the previous run.
//!
//! Links are processed strongest first (by the priority of their weaker end), so when a
//! limit would break (two `customer_id`s in one person), the weak identifier that tried to
//! bridge them (a shared tablet, a placeholder phone) is the one set aside. Set-aside
//! identifiers link nothing, and the people they had joined are stitched again without
//! them, so one bad bridge never merges two people even partially.
//!
//! Sized for tens of millions of links: identifiers are interned once (in parallel
//! shards, see [`Interner`]), everything after that works on dense `u32` numbers, and the
//! result is columnar (no allocation per identifier).

use std::collections::{HashMap, HashSet};

use twox_hash::XxHash64;

use crate::config::StitchRules;
use crate::identity::interner::{IdType, Interner, Key, NONE, type_seed};
use crate::identity::parallel::{parallel_bucket_sort, parallel_sort};

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

/// Previous unified ids are interned under this one type.
const UNIFIED_ID_TYPE: IdType = IdType { id: 0, seed: 0 };

/// Identifiers and the links seen between them, interned.
#[derive(Debug, Default)]
pub struct IdentityGraph {
    type_names: Vec<String>,
    type_seeds: Vec<u64>,
    values: Interner,
    links: Vec<(u32, u32)>,
    /// Previous unified ids, interned, with when each was issued (by id node).
    previous_ids: Interner,
    previous_since: Vec<i64>,
    /// (identifier node, previous id node).
    previous: Vec<(u32, u32)>,
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
    /// `values` nodes of the identifiers, in canonical order.
    order: Vec<u32>,
    types: Vec<u16>,
    cluster: Vec<u32>,
    cluster_ids: TextList,
    cluster_since: Vec<i64>,
    cluster_sizes: Vec<u32>,
    previous_ids: Interner,
    previous: Vec<u32>,
    status: Vec<IdentifierStatus>,
    reasons: Reasons,
}

/// Why identifiers are set aside or changed person, by position: few have one, so a map
/// instead of a slot per identifier (tens of MB to allocate and fill at scale 10).
type Reasons = HashMap<u32, String>;

/// Strings back to back, by number: one allocation for millions of short strings.
#[derive(Debug, Default)]
struct TextList {
    text: String,
    ends: Vec<usize>,
}

impl TextList {
    fn with_capacity(items: usize) -> Self {
        Self {
            text: String::with_capacity(items * UNIFIED_ID_LEN),
            ends: Vec::with_capacity(items),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.ends.push(self.text.len());
    }

    /// Adds the id this module issues for `number` (below 2^55): `u` and 11 lowercase
    /// Crockford base-32 digits. Twelve bytes, so the id sits inside its Arrow string view
    /// and joins and groupings on it compare views, not buffers.
    fn push_unified_id(&mut self, number: u64) {
        let mut id = [b'u'; UNIFIED_ID_LEN];
        for (i, digit) in id[1..].iter_mut().enumerate() {
            let shift = 5 * (UNIFIED_ID_DIGITS - 1 - i);
            *digit = BASE32[(number >> shift) as usize & 0x1f];
        }
        self.push(std::str::from_utf8(&id).expect("ASCII"));
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

impl Stitched {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, i: usize) -> StitchedIdentifier<'_> {
        StitchedIdentifier {
            id_type: self.id_type(i),
            id_value: self.id_value(i),
            unified_id: self.unified_id(i),
            unified_since: self.unified_since(i),
            previous_unified_id: self.previous_unified_id(i),
            status: self.status[i],
            reason: self.reason(i),
            cluster_size: self.cluster_size(i),
        }
    }

    /// Every identifier, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = StitchedIdentifier<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }

    // One field of identifier `i`, for building a column at a time.

    pub fn id_type(&self, i: usize) -> &str {
        &self.type_names[self.types[i] as usize]
    }

    pub fn id_value(&self, i: usize) -> &str {
        self.values.value(self.order[i])
    }

    fn cluster_of(&self, i: usize) -> Option<usize> {
        let cluster = self.cluster[i];
        (cluster != NONE).then_some(cluster as usize)
    }

    pub fn unified_id(&self, i: usize) -> Option<&str> {
        self.cluster_of(i).map(|c| self.cluster_ids.get(c))
    }

    pub fn unified_since(&self, i: usize) -> Option<i64> {
        self.cluster_of(i).map(|c| self.cluster_since[c])
    }

    pub fn previous_unified_id(&self, i: usize) -> Option<&str> {
        let previous = self.previous[i];
        (previous != NONE).then(|| self.previous_ids.value(previous))
    }

    pub fn status(&self, i: usize) -> IdentifierStatus {
        self.status[i]
    }

    pub fn reason(&self, i: usize) -> Option<&str> {
        self.reasons.get(&(i as u32)).map(String::as_str)
    }

    /// Identifiers in its person (0 when not linked).
    pub fn cluster_size(&self, i: usize) -> u32 {
        self.cluster_of(i).map_or(0, |c| self.cluster_sizes[c])
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

    /// A graph whose identifiers are interned in `shards` shards (the default is one per
    /// core); the result does not depend on it.
    pub fn with_shards(shards: usize) -> Self {
        Self {
            values: Interner::with_shards(shards),
            previous_ids: Interner::with_shards(shards),
            ..Self::default()
        }
    }

    /// An identifier type, registered on first sight.
    pub fn register_type(&mut self, id_type: &str) -> IdType {
        if let Some(known) = self.known_type(id_type) {
            return known;
        }
        self.type_names.push(id_type.to_string());
        self.type_seeds.push(type_seed(id_type));
        self.known_type(id_type).expect("just registered")
    }

    /// An identifier type already seen, if it was.
    pub fn known_type(&self, id_type: &str) -> Option<IdType> {
        let id = self.type_names.iter().position(|t| t == id_type)?;
        Some(IdType {
            id: id as u16,
            seed: self.type_seeds[id],
        })
    }

    /// Adds records, segment by segment: segment `s` has `rows[s]` records, and
    /// `identifier(s, row, 0)` and `identifier(s, row, 1)` are the two identifiers record
    /// `row` links (the second `None` when it only declares the first). Identifiers are
    /// created on first sight.
    pub fn add_records<'k>(
        &mut self,
        rows: &[usize],
        identifier: impl Fn(usize, usize, usize) -> Option<Key<'k>> + Sync,
    ) {
        let slots: Vec<usize> = rows.iter().map(|r| r * 2).collect();
        let nodes = self.values.intern_segments(
            &slots,
            |segment, i| identifier(segment, i / 2, i % 2),
            true,
        );
        self.links.extend(
            nodes
                .chunks_exact(2)
                .filter(|pair| pair[0] != NONE && pair[1] != NONE && pair[0] != pair[1])
                .map(|pair| (pair[0], pair[1])),
        );
    }

    /// Two identifiers seen on one record. A link to itself just records the identifier.
    pub fn link(&mut self, a_type: &str, a_value: &str, b_type: &str, b_value: &str) {
        let (a_type, b_type) = (self.register_type(a_type), self.register_type(b_type));
        let pair = [
            Key {
                id_type: a_type,
                value: a_value,
            },
            Key {
                id_type: b_type,
                value: b_value,
            },
        ];
        self.add_records(&[1], |_, _, side| Some(pair[side]));
    }

    /// The unified ids identifiers had in the previous run (`identifiers[i]` had
    /// `previous[i]`). Unknown identifiers are ignored: they no longer appear in the input.
    pub fn remember_all(&mut self, identifiers: &[Key<'_>], previous: &[(&str, i64)]) {
        let nodes = self.values.intern(identifiers, false);
        let id_keys: Vec<Key<'_>> = previous
            .iter()
            .map(|&(unified_id, _)| Key {
                id_type: UNIFIED_ID_TYPE,
                value: unified_id,
            })
            .collect();
        let ids = self.previous_ids.intern(&id_keys, true);
        self.previous_since
            .resize(self.previous_ids.node_bound(), i64::MIN);
        for ((&node, &id), &(_, since)) in nodes.iter().zip(&ids).zip(previous) {
            if self.previous_since[id as usize] == i64::MIN {
                self.previous_since[id as usize] = since;
            }
            if node != NONE {
                self.previous.push((node, id));
            }
        }
    }

    /// The unified id one identifier had in the previous run.
    pub fn remember(&mut self, id_type: &str, id_value: &str, previous: PreviousId) {
        let Some(id_type) = self.known_type(id_type) else {
            return;
        };
        let key = Key {
            id_type,
            value: id_value,
        };
        self.remember_all(&[key], &[(&previous.unified_id, previous.since)]);
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
    /// is the interned node; everything below is indexed by position.
    order: Vec<u32>,
    types: Vec<u16>,
    /// Value hashes (of type and value), by position.
    hashes: Vec<u64>,
    previous_ids: Interner,
    previous_since: Vec<i64>,
    previous: Vec<u32>,
    /// (strong, weak) positions in processing order.
    links: Vec<(u32, u32)>,
    status: Vec<IdentifierStatus>,
    reasons: Reasons,
    /// Limited types: (type, limit).
    limits: Vec<(u16, u32)>,
}

impl Stitcher {
    fn new(graph: IdentityGraph, rules: &StitchRules) -> Self {
        let IdentityGraph {
            type_names,
            mut values,
            links,
            mut previous_ids,
            previous_since,
            previous,
            ..
        } = graph;
        values.done_interning();
        previous_ids.done_interning();
        let mut clock = std::time::Instant::now();
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

        // Sort keys: type position (bits 96..), value hash (32..96), node (0..32).
        let mut keys: Vec<u128> = values
            .nodes()
            .map(|node| {
                let t = type_position[values.type_id(node) as usize];
                (u128::from(t) << 96) | (u128::from(values.hash(node)) << 32) | u128::from(node)
            })
            .collect();
        // Buckets by type and the top bits of the hash.
        let bits = bucket_bits(keys.len() / type_names.len().max(1));
        parallel_bucket_sort(&mut keys, type_names.len() << bits, |&key| {
            let hash = (key >> 32) as u64;
            ((key >> 96) as usize) << bits | hash.checked_shr(64 - bits).unwrap_or(0) as usize
        });
        log_phase(&mut clock, "identifiers sorted");
        // Equal hashes within a type (rare) are ordered by value.
        let mut start = 0;
        while start < keys.len() {
            let mut end = start + 1;
            while end < keys.len() && keys[end] >> 32 == keys[start] >> 32 {
                end += 1;
            }
            if end - start > 1 {
                keys[start..end]
                    .sort_by(|&a, &b| values.value(a as u32).cmp(values.value(b as u32)));
            }
            start = end;
        }
        let order: Vec<u32> = keys.iter().map(|&k| k as u32).collect();
        let types: Vec<u16> = keys
            .iter()
            .map(|&k| type_order[(k >> 96) as usize])
            .collect();
        let hashes: Vec<u64> = keys.iter().map(|&k| (k >> 32) as u64).collect();
        drop(keys);
        let mut position_of = vec![NONE; values.node_bound()];
        for (position, &node) in order.iter().enumerate() {
            position_of[node as usize] = position as u32;
        }
        let mut previous_of = vec![NONE; order.len()];
        for (node, id) in previous {
            previous_of[position_of[node as usize] as usize] = id;
        }

        // Links grouped by the rank of their weaker end, each group in canonical order.
        let rank_of_type: Vec<usize> = type_names.iter().map(|t| rules.rank(t)).collect();
        let ranks = rank_of_type.iter().copied().max().unwrap_or(0) + 1;
        let mut by_rank: Vec<Vec<u64>> = vec![Vec::new(); ranks];
        for (index, &(a, b)) in links.iter().enumerate() {
            if let Some(&(a, b)) = links.get(index + PREFETCH_AHEAD) {
                prefetch(&position_of[a as usize]);
                prefetch(&position_of[b as usize]);
            }
            let (a, b) = (position_of[a as usize], position_of[b as usize]);
            let (strong, weak) = (a.min(b), a.max(b));
            let rank = rank_of_type[types[weak as usize] as usize];
            by_rank[rank].push((u64::from(strong) << 32) | u64::from(weak));
        }
        let mut links = Vec::new();
        let positions = order.len() as u64;
        for mut group in by_rank {
            // Buckets by the strong end.
            let buckets = 1 << bucket_bits(group.len());
            parallel_bucket_sort(&mut group, buckets, |&link| {
                ((link >> 32) * buckets as u64 / positions) as usize
            });
            group.dedup();
            links.extend(group.into_iter().map(|l| ((l >> 32) as u32, l as u32)));
        }

        log_phase(&mut clock, "links ordered");
        // Blocklists, checked shard by shard in parallel.
        let blocklists: Vec<_> = type_names.iter().map(|t| rules.blocklist_of(t)).collect();
        let blocked = values.per_shard(|nodes| {
            nodes
                .filter_map(|node| {
                    let blocklist = &blocklists[values.type_id(node) as usize];
                    // Types without a blocklist skip reading the value.
                    if blocklist.is_empty() {
                        return None;
                    }
                    blocklist
                        .reason(values.value(node))
                        .map(|reason| (node, reason))
                })
                .collect::<Vec<_>>()
        });
        let mut reasons = Reasons::new();
        let mut status = vec![IdentifierStatus::Linked; order.len()];
        for (node, reason) in blocked.into_iter().flatten() {
            let position = position_of[node as usize];
            reasons.insert(position, reason);
            status[position as usize] = IdentifierStatus::Blocklisted;
        }
        log_phase(&mut clock, "blocklists checked");
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
            hashes,
            previous_ids,
            previous_since,
            previous: previous_of,
            links,
            status,
            reasons,
            limits,
        }
    }

    fn value(&self, node: u32) -> &str {
        self.values.value(self.order[node as usize])
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
        (id != NONE).then(|| self.previous_ids.value(id))
    }

    fn run(mut self, now: i64) -> (Stitched, StitchStats) {
        let mut stats = StitchStats {
            identifiers: self.order.len(),
            links: self.links.len(),
            passes: 1,
            ..StitchStats::default()
        };
        let mut clock = std::time::Instant::now();
        let (mut forest, contested) = self.union_pass();
        stats.refused_links = forest.refused;
        log_phase(&mut clock, "union pass under the limits");
        let mut roots = forest.roots();
        log_phase(&mut clock, "people found");
        if contested > 0 {
            stats.passes = 2;
            self.rebuild_contested(&mut forest, &mut roots);
            log_phase(&mut clock, "people with set-aside identifiers rebuilt");
        }
        self.assign_ids(&forest, &roots, now, stats)
    }

    /// The union-find pass over the usable links, under the limits. Returns the forest
    /// and how many identifiers it set aside.
    fn union_pass(&mut self) -> (Forest, usize) {
        let slots = self.limits.len();
        let mut forest = Forest::new(self.order.len(), slots, self.links.len());
        for (slot, &(limited_type, _)) in self.limits.iter().enumerate() {
            for (node, &t) in self.types.iter().enumerate() {
                if t == limited_type && self.status[node] == IdentifierStatus::Linked {
                    forest.set_count(node, slot, 1);
                }
            }
        }
        let mut contested = 0;
        // Taken out for the loop, which marks identifiers on `self` as it goes.
        let links = std::mem::take(&mut self.links);
        for (index, &(strong, weak)) in links.iter().enumerate() {
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
                let (limited_type, limit) = self.limits[slot];
                let type_name = &self.type_names[limited_type as usize];
                self.status[weak as usize] = IdentifierStatus::Contested;
                self.reasons.insert(weak, format!(
                    "refused link to {}: it would give one person more than {limit} {type_name} (identity.limits.{type_name})",
                    self.describe(strong)
                ));
                contested += 1;
                continue;
            }
            forest.union(rs, rw, index as u32);
        }
        self.links = links;
        (forest, contested)
    }

    /// Set-aside identifiers link nothing: the people of the first pass that hold one are
    /// taken apart and stitched again from their links without them, so a bad bridge
    /// leaves no partial merge behind. This is what a second full pass would give: every
    /// other person saw no set-aside identifier, so its links unite it as before, and the
    /// rebuilt people are parts of people that kept within the limits, so they need no
    /// checks. `roots` (each identifier's root) is updated.
    fn rebuild_contested(&self, forest: &mut Forest, roots: &mut [u32]) {
        let mut rebuilt = vec![false; roots.len()];
        for (node, &root) in roots.iter().enumerate() {
            if self.status[node] == IdentifierStatus::Contested {
                rebuilt[root as usize] = true;
            }
        }
        let members: Vec<u32> = (0..roots.len() as u32)
            .filter(|&node| rebuilt[roots[node as usize] as usize])
            .collect();
        for &node in &members {
            forest.reset(node);
        }
        let links = &self.links;
        let mut unions = std::mem::take(&mut forest.unions);
        unions.retain(|&index| !rebuilt[roots[links[index as usize].0 as usize] as usize]);
        // A usable link with an end in a rebuilt person has both ends there: any link
        // across two people of the first pass was refused, and its weak end set aside.
        let linked = |node: u32| self.status[node as usize] == IdentifierStatus::Linked;
        for (index, &(strong, weak)) in links.iter().enumerate() {
            if !rebuilt[roots[strong as usize] as usize] || !linked(strong) || !linked(weak) {
                continue;
            }
            let (rs, rw) = (forest.find(strong), forest.find(weak));
            if rs != rw {
                forest.union(rs, rw, index as u32);
            }
        }
        // The other people's unions, then the rebuilt ones: two runs in link order, which
        // the stable sort merges in one pass.
        unions.append(&mut forest.unions);
        unions.sort();
        forest.unions = unions;
        for &node in &members {
            roots[node as usize] = forest.find(node);
        }
    }

    fn assign_ids(
        mut self,
        forest: &Forest,
        roots: &[u32],
        now: i64,
        mut stats: StitchStats,
    ) -> (Stitched, StitchStats) {
        let mut clock = std::time::Instant::now();
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
            let root = roots[node as usize] as usize;
            if cluster_of_root[root] == NONE {
                cluster_of_root[root] = anchors.len() as u32;
                anchors.push(node);
                sizes.push(0);
            }
            cluster[node as usize] = cluster_of_root[root];
            sizes[cluster_of_root[root] as usize] += 1;
        }
        stats.persons = anchors.len();
        log_phase(&mut clock, "clusters numbered");

        // Previous ids: how many identifiers of each cluster carried each of them.
        let mut carried: Vec<(u32, u32)> = (0..n)
            .filter(|&node| self.previous[node] != NONE && cluster[node] != NONE)
            .map(|node| (cluster[node], self.previous[node]))
            .collect();
        parallel_sort(&mut carried);
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
        // Ties on `since` are broken by the id's content (its hash, then its text), not
        // by interning order.
        let ids = &self.previous_ids;
        candidates.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| ids.hash(a.1).cmp(&ids.hash(b.1)))
                .then_with(|| {
                    if a.1 == b.1 {
                        std::cmp::Ordering::Equal
                    } else {
                        ids.value(a.1).cmp(ids.value(b.1))
                    }
                })
                .then_with(|| a.2.cmp(&b.2))
                .then_with(|| a.3.cmp(&b.3))
        });
        let clusters = anchors.len();
        let mut kept_id = vec![NONE; clusters];
        let mut id_kept = vec![false; self.previous_ids.node_bound()];
        for &(_, id, _, cluster) in &candidates {
            if kept_id[cluster as usize] == NONE && !id_kept[id as usize] {
                kept_id[cluster as usize] = id;
                id_kept[id as usize] = true;
            }
        }
        log_phase(&mut clock, "previous ids matched");
        let new_ids = self.new_id_numbers(&anchors, &kept_id);
        let mut new_ids = new_ids.into_iter();
        let mut cluster_ids = TextList::with_capacity(clusters);
        let mut cluster_since = Vec::with_capacity(clusters);
        for &id in &kept_id {
            if id != NONE {
                cluster_ids.push(self.previous_ids.value(id));
                cluster_since.push(self.previous_since[id as usize]);
            } else {
                cluster_ids.push_unified_id(new_ids.next().expect("one per new cluster"));
                cluster_since.push(now);
            }
        }

        log_phase(&mut clock, "ids issued");
        let merge_reasons = forest.merge_reasons(&self, &cluster, &cluster_ids);
        let split_causes = self.split_causes();
        for (node, &node_cluster) in cluster.iter().enumerate() {
            if self.status[node] != IdentifierStatus::Linked {
                continue;
            }
            let Some(before) = self.previous_id(node as u32) else {
                continue;
            };
            let now_id = cluster_ids.get(node_cluster as usize);
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
            self.reasons.insert(node as u32, reason);
        }
        log_phase(&mut clock, "changes explained");
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

    /// The numbers of the ids of the clusters that keep no previous id, in cluster order:
    /// each from the cluster's anchor, salted until it collides with no id issued before
    /// and no earlier new id.
    fn new_id_numbers(&self, anchors: &[u32], kept_id: &[u32]) -> Vec<u64> {
        let fresh: Vec<u32> = anchors
            .iter()
            .zip(kept_id)
            .filter(|(_, id)| **id == NONE)
            .map(|(&anchor, _)| anchor)
            .collect();
        let anchor_of =
            |anchor: u32, salt: u32| anchor_id_number(self.hashes[anchor as usize], salt);
        let mut numbers: Vec<u64> = fresh.iter().map(|&anchor| anchor_of(anchor, 0)).collect();
        let issued: Vec<u64> = self
            .previous_ids
            .nodes()
            .filter_map(|id| parse_unified_id(self.previous_ids.value(id)))
            .collect();
        // Collisions are rare (55-bit numbers): check them all at once with a sort, and
        // only on a collision walk the clusters in order with a set of taken numbers.
        let mut all: Vec<u64> = numbers.iter().chain(&issued).copied().collect();
        parallel_sort(&mut all);
        if all.windows(2).all(|pair| pair[0] != pair[1]) {
            return numbers;
        }
        let mut taken: HashSet<u64> = issued.into_iter().collect();
        for (number, &anchor) in numbers.iter_mut().zip(&fresh) {
            let mut salt = 0;
            while !taken.insert(*number) {
                salt += 1;
                *number = anchor_of(anchor, salt);
            }
        }
        numbers
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
                self.reasons.get(&other).map_or("set aside", String::as_str)
            ),
            None => {
                format!("split from {before}: the links that joined it are no longer in the input")
            }
        }
    }
}

/// Bits of bucket number for [`parallel_bucket_sort`] of `items` keys spread evenly: about
/// a thousand keys per bucket.
fn bucket_bits(items: usize) -> u32 {
    (items / 1024).max(1).ilog2().min(20)
}

/// How many links ahead the ordering of the links prefetches the positions it will read.
const PREFETCH_AHEAD: usize = 16;

/// Starts loading `item` into the cache. The links arrive in no useful order, so reading
/// the positions of their ends would otherwise wait on main memory one read at a time
/// (measured at scale 10: 100 ms for the ordering without it, 80 ms with it; the union
/// pass, whose cost is in the finds, gained nothing from it).
#[inline(always)]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, and `item` is a live reference.
    #[allow(unsafe_code)]
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(item).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// Logs (at debug) how long the phase that just ended took, and starts the next one.
fn log_phase(clock: &mut std::time::Instant, phase: &str) {
    tracing::debug!(ms = clock.elapsed().as_millis(), "stitch: {phase}");
    *clock = std::time::Instant::now();
}

/// Crockford's base-32 digits, lowercase (no i, l, o or u: nothing to misread).
const BASE32: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const UNIFIED_ID_DIGITS: usize = 11;
const UNIFIED_ID_LEN: usize = 1 + UNIFIED_ID_DIGITS;

/// The number of a new person's id (55 bits, what [`TextList::push_unified_id`] spells):
/// from the hash of its strongest identifier (type and value, see
/// [`crate::identity::interner::value_hash`]) and a salt, so stable across runs and
/// platforms.
fn anchor_id_number(value_hash: u64, salt: u32) -> u64 {
    XxHash64::oneshot(u64::from(salt), &value_hash.to_le_bytes()) >> (64 - 5 * UNIFIED_ID_DIGITS)
}

/// The number inside an id this module issues. Ids of the earlier `u-<16 hex digits>` form
/// are kept by their people but never clash with new ones (another length), so they give
/// `None`.
fn parse_unified_id(id: &str) -> Option<u64> {
    let digits = id
        .strip_prefix('u')
        .filter(|_| id.len() == UNIFIED_ID_LEN)?;
    digits.bytes().try_fold(0u64, |number, digit| {
        let value = BASE32.iter().position(|&b| b == digit)?;
        Some(number << 5 | value as u64)
    })
}

/// Union-find with union by size, path halving and per-root counts of limited types.
struct Forest {
    parent: Vec<u32>,
    /// Per node, side by side (one cache line for the checks and the union of two roots):
    /// its size, then the distinct values of each limited type under it.
    tallies: Vec<u32>,
    slots: usize,
    refused: usize,
    /// The links (by index) that performed the unions, in link order (for merge reasons).
    unions: Vec<u32>,
}

impl Forest {
    fn new(nodes: usize, slots: usize, links: usize) -> Self {
        let mut tallies = vec![0; nodes * (1 + slots)];
        for size in tallies.iter_mut().step_by(1 + slots) {
            *size = 1;
        }
        Self {
            parent: (0..nodes as u32).collect(),
            tallies,
            slots,
            refused: 0,
            // At most one union per link; fewer than one per node.
            unions: Vec::with_capacity(links.min(nodes)),
        }
    }

    /// Tallies per node: its size and one count per limited type.
    fn stride(&self) -> usize {
        1 + self.slots
    }

    /// The tallies of `node`: its size, then its counts.
    fn tally(&self, node: u32) -> &[u32] {
        let start = node as usize * self.stride();
        &self.tallies[start..start + self.stride()]
    }

    fn set_count(&mut self, node: usize, slot: usize, count: u32) {
        let start = node * self.stride();
        self.tallies[start + 1 + slot] = count;
    }

    /// Back to an identifier of its own. Its limit counts are left as they were: only the
    /// rebuild of [`Stitcher::rebuild_contested`] resets, and it checks no limits.
    fn reset(&mut self, node: u32) {
        self.parent[node as usize] = node;
        let start = node as usize * self.stride();
        self.tallies[start] = 1;
    }

    /// The root of every node.
    fn roots(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|node| self.find(node))
            .collect()
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
        let (a, b) = (self.tally(a), self.tally(b));
        (0..self.slots).find(|&slot| a[1 + slot] + b[1 + slot] > limits[slot].1)
    }

    fn union(&mut self, a: u32, b: u32, link: u32) {
        let (big, small) = if self.tally(a)[0] >= self.tally(b)[0] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        let stride = self.stride();
        let (big, small) = (big as usize * stride, small as usize * stride);
        for i in 0..stride {
            self.tallies[big + i] += self.tallies[small + i];
        }
        self.unions.push(link);
    }

    /// For each previous id absorbed by a merge: the first link that joined it to the
    /// identifiers of the id that survived.
    fn merge_reasons(
        &self,
        stitcher: &Stitcher,
        cluster: &[u32],
        cluster_ids: &TextList,
    ) -> HashMap<u32, String> {
        let mut reasons = HashMap::new();
        for &index in &self.unions {
            let (strong, weak) = stitcher.links[index as usize];
            let (a, b) = (
                stitcher.previous[strong as usize],
                stitcher.previous[weak as usize],
            );
            if a == NONE || b == NONE || a == b || cluster[strong as usize] == NONE {
                continue;
            }
            let survivor = cluster_ids.get(cluster[strong as usize] as usize);
            for absorbed in [a, b] {
                let absorbed_id = stitcher.previous_ids.value(absorbed);
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

    /// A repeatable stream of numbers below a bound (xorshift), for generated graphs.
    fn random_below(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |below| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        }
    }

    fn graph(links: &[(&str, &str, &str, &str)]) -> IdentityGraph {
        let mut g = IdentityGraph::new();
        for (at, av, bt, bv) in links {
            g.link(at, av, bt, bv);
        }
        g
    }

    #[test]
    fn unified_ids_fit_a_string_view_and_parse_back() {
        let mut ids = TextList::with_capacity(3);
        for number in [0, 12_345_678_901, (1 << 55) - 1] {
            ids.push_unified_id(number);
        }
        assert_eq!(ids.get(0), "u00000000000");
        assert_eq!(ids.get(2), "uzzzzzzzzzzz");
        for (i, number) in [0, 12_345_678_901, (1u64 << 55) - 1]
            .into_iter()
            .enumerate()
        {
            assert_eq!(ids.get(i).len(), 12, "inline in an Arrow view");
            assert_eq!(parse_unified_id(ids.get(i)), Some(number));
        }
        // The earlier form and foreign ids are not this form's numbers.
        assert_eq!(parse_unified_id("u-00000000000000ff"), None);
        assert_eq!(parse_unified_id("uiiiiiiiiiii"), None);
        assert!(anchor_id_number(u64::MAX, 7) < 1 << 55);
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
    fn people_without_the_set_aside_identifiers_are_their_links_components() {
        // Customers, each with an email and a phone; devices and emails now and then
        // shared across customers, so some links are refused and their weak ends set aside
        // after they may already have joined someone.
        let mut next = random_below(5u64);
        let customers = 3_000u64;
        let mut edges: Vec<(&str, String, &str, String)> = Vec::new();
        for _ in 0..12_000 {
            let c = next(customers);
            let email = if next(20) == 0 { next(customers) } else { c };
            edges.push((
                "customer_id",
                format!("C{c}"),
                "email",
                format!("e{email}@x.fr"),
            ));
            let device = if next(8) == 0 { next(customers) } else { c };
            edges.push((
                "email",
                format!("e{c}@x.fr"),
                "device_id",
                format!("d{device}"),
            ));
            edges.push(("phone", format!("+336{c:08}"), "device_id", format!("d{c}")));
        }
        let mut g = IdentityGraph::new();
        for (at, av, bt, bv) in &edges {
            g.link(at, av, bt, bv);
        }
        let (result, stats) = g.stitch(&rules(""), 0);
        assert_eq!(stats.passes, 2, "the input has bridges to refuse");
        let status: HashMap<(&str, &str), IdentifierStatus> = result
            .iter()
            .map(|r| ((r.id_type, r.id_value), r.status))
            .collect();
        // Independent reference: components, by search, of the links between identifiers
        // that stay linked.
        let linked = |t: &str, v: &str| status[&(t, v)] == IdentifierStatus::Linked;
        let mut neighbours: HashMap<(&str, &str), Vec<(&str, &str)>> = HashMap::new();
        for (at, av, bt, bv) in &edges {
            let (a, b) = ((*at, av.as_str()), (*bt, bv.as_str()));
            neighbours.entry(a).or_default();
            neighbours.entry(b).or_default();
            if linked(a.0, a.1) && linked(b.0, b.1) {
                neighbours.get_mut(&a).unwrap().push(b);
                neighbours.get_mut(&b).unwrap().push(a);
            }
        }
        let mut starts: Vec<(&str, &str)> = neighbours.keys().copied().collect();
        starts.sort_unstable();
        let mut component: HashMap<(&str, &str), usize> = HashMap::new();
        for start in starts {
            if component.contains_key(&start) || !linked(start.0, start.1) {
                continue;
            }
            let label = component.len();
            component.insert(start, label);
            let mut queue = vec![start];
            while let Some(node) = queue.pop() {
                for &other in &neighbours[&node] {
                    if component.insert(other, label).is_none() {
                        queue.push(other);
                    }
                }
            }
        }
        let mut person_of_component: HashMap<usize, &str> = HashMap::new();
        let mut customers_of_person: HashMap<&str, usize> = HashMap::new();
        for r in result.iter() {
            let key = (r.id_type, r.id_value);
            match r.unified_id {
                None => assert!(!component.contains_key(&key)),
                Some(person) => {
                    let label = component[&key];
                    assert_eq!(*person_of_component.entry(label).or_insert(person), person);
                    if r.id_type == "customer_id" {
                        *customers_of_person.entry(person).or_default() += 1;
                    }
                }
            }
        }
        // One person per component, never two customers in one person.
        let labels: HashSet<usize> = component.values().copied().collect();
        assert_eq!(person_of_component.len(), labels.len());
        assert_eq!(stats.persons, labels.len());
        assert!(customers_of_person.values().all(|&n| n == 1));
        assert!(
            result
                .iter()
                .any(|r| r.status == IdentifierStatus::Contested)
        );
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

    /// Every identifier's id, status and reason (sorted), persons and refused links.
    fn outcome(links: &[(&str, &str, &str, &str)]) -> (Vec<String>, usize, usize) {
        let (result, stats) = graph(links).stitch(&rules(""), 0);
        let mut rows: Vec<String> = result
            .iter()
            .map(|r| {
                format!(
                    "{} {} {:?} {} {:?}",
                    r.id_type,
                    r.id_value,
                    r.unified_id,
                    r.status.as_str(),
                    r.reason
                )
            })
            .collect();
        rows.sort();
        (rows, stats.persons, stats.refused_links)
    }

    /// The outcome of `links`, checked to be the same with the links in reverse order.
    fn outcome_whatever_the_order<const N: usize>(
        links: [(&str, &str, &str, &str); N],
    ) -> (Vec<String>, usize, usize) {
        let first = outcome(&links);
        let mut reversed = links;
        reversed.reverse();
        assert_eq!(first, outcome(&reversed));
        first
    }

    #[test]
    fn ids_are_deterministic_whatever_the_input_order() {
        let (rows, persons, _) = outcome_whatever_the_order([
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "b@x.fr", "phone", "+33600000001"),
            ("anonymous_id", "k", "email", "b@x.fr"),
        ]);
        assert_eq!(persons, 2, "{rows:?}");
    }

    /// Which link a limit refuses, and why, must not depend on the order links arrived in.
    #[test]
    fn refusals_are_deterministic_whatever_the_input_order() {
        let first = outcome_whatever_the_order([
            ("customer_id", "C1", "device_id", "tablet"),
            ("customer_id", "C2", "device_id", "tablet"),
            ("customer_id", "C1", "email", "a@x.fr"),
            ("email", "a@x.fr", "phone", "+33600000009"),
            ("customer_id", "C2", "phone", "+33600000009"),
            ("customer_id", "C3", "email", "c@x.fr"),
        ]);
        // C1 and C2 stay apart: the tablet and the phone that bridged them are refused.
        assert_eq!(first.1, 3, "{:?}", first.0);
        assert_eq!(first.2, 2);
        let refused: Vec<&String> = first.0.iter().filter(|r| r.contains("contested")).collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused.iter().any(|r| r.starts_with("device_id tablet")));
        assert!(refused.iter().any(|r| r.starts_with("phone +33600000009")));
    }

    /// Large enough for the parallel paths (interning, sorts, output) to run.
    #[test]
    fn large_graphs_match_a_plain_connected_components_whatever_the_shards() {
        let mut next = random_below(11u64);
        let (people, links) = (20_000u64, 60_000);
        let edges: Vec<(String, String)> = (0..links)
            .map(|_| {
                let a = next(people);
                // Mostly within a block of 4 identifiers, sometimes across blocks.
                let b = if next(10) == 0 {
                    next(people)
                } else {
                    a / 4 * 4 + next(4)
                };
                (format!("e{a}@x.fr"), format!("+336{b:08}"))
            })
            .collect();
        let stitch_with = |shards| {
            let mut g = IdentityGraph::with_shards(shards);
            let (email, phone) = (g.register_type("email"), g.register_type("phone"));
            g.add_records(&[edges.len()], |_, row, side| {
                let (a, b) = &edges[row];
                Some(if side == 0 {
                    Key {
                        id_type: email,
                        value: a,
                    }
                } else {
                    Key {
                        id_type: phone,
                        value: b,
                    }
                })
            });
            let (result, _) = g.stitch(&rules(""), 0);
            let mut ids: Vec<(String, String)> = result
                .iter()
                .map(|r| (r.id_value.to_string(), r.unified_id.unwrap().to_string()))
                .collect();
            ids.sort();
            ids
        };
        let one = stitch_with(1);
        assert_eq!(one, stitch_with(3));

        // Independent reference: components by breadth-first search over the edges.
        let mut neighbours: HashMap<&str, Vec<&str>> = HashMap::new();
        for (a, b) in &edges {
            neighbours.entry(a).or_default().push(b);
            neighbours.entry(b).or_default().push(a);
        }
        let mut component: HashMap<&str, usize> = HashMap::new();
        let mut starts: Vec<&str> = neighbours.keys().copied().collect();
        starts.sort_unstable();
        for start in starts {
            if component.contains_key(start) {
                continue;
            }
            let label = component.len();
            let mut queue = vec![start];
            component.insert(start, label);
            while let Some(node) = queue.pop() {
                for &other in &neighbours[node] {
                    if !component.contains_key(other) {
                        component.insert(other, label);
                        queue.push(other);
                    }
                }
            }
        }
        assert_eq!(one.len(), component.len());
        let unified: HashMap<&str, &str> =
            one.iter().map(|(v, u)| (v.as_str(), u.as_str())).collect();
        for (a, b) in &edges {
            assert_eq!(unified[a.as_str()], unified[b.as_str()]);
        }
        let mut pairs: Vec<(usize, &str)> = one
            .iter()
            .map(|(v, u)| (component[v.as_str()], u.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        // One unified id per component, and no id shared by two components.
        let components = component.values().collect::<HashSet<_>>().len();
        assert_eq!(pairs.len(), components);
        assert_eq!(
            pairs.iter().map(|p| p.1).collect::<HashSet<_>>().len(),
            components
        );
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
