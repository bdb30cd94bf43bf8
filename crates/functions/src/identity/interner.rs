//! Identifier interning: each distinct (type, value) gets a number, found again by content.
//!
//! Sized for tens of millions of identifiers. The values are split by hash into many small
//! shards, each small enough that its table and text stay in the core's cache. A batch of
//! keys is first sorted into per-shard buffers (hash, type and a copy of the value, read
//! front to back from the input), then the cores fill their shards from those buffers, so
//! the probes hit cache instead of main memory and no locks are taken. A node number is
//! `local * shards + shard`, so the numbering depends on the shard count; nothing outside
//! relies on it (the stitch orders identifiers by content).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use hashbrown::HashTable;

use crate::identity::parallel::{cores, parallel_map, parallel_runs};

use twox_hash::XxHash64;

/// No node (an identifier not found, an unset link end).
pub const NONE: u32 = u32::MAX;

/// Batches with fewer keys than this are interned on the calling thread.
const PARALLEL_FROM_KEYS: usize = 32_768;

/// Shards of a default interner: at 10 million identifiers a shard's table and text are
/// about 1 MiB, the size of a core's L2 cache here.
pub const DEFAULT_SHARDS: usize = 256;

/// The hash of a value of a type, stable across runs and platforms (xxHash64), so orders
/// derived from it are too. `seed` is [`type_seed`] of the type.
pub fn value_hash(seed: u64, value: &str) -> u64 {
    XxHash64::oneshot(seed, value.as_bytes())
}

/// The hash seed of an identifier type: two types never share a value's hash by design.
pub fn type_seed(type_name: &str) -> u64 {
    XxHash64::oneshot(0, type_name.as_bytes())
}

/// The shard of a hash among `shards`.
fn shard_of(hash: u64, shards: usize) -> usize {
    // Bits hashbrown uses neither for its buckets (low) nor for its tags (top 7).
    ((hash >> 32) % shards as u64) as usize
}

/// The node number of local number `local` in shard `index` of `shards`.
fn node_number(local: u32, index: usize, shards: usize) -> u32 {
    local * shards as u32 + index as u32
}

/// An identifier type: its number and its hash seed ([`type_seed`] of its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdType {
    pub id: u16,
    pub seed: u64,
}

/// An identifier to intern.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub id_type: IdType,
    pub value: &'a str,
}

/// A table entry. The full hash and the value's place in the text sit in the entry, so a
/// probe touches the text only for a value that really matches.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    /// Where the value starts in the shard's text (low 48 bits) and its type (high 16).
    start_and_type: u64,
    len: u32,
    local: u32,
}

impl Slot {
    fn matches(&self, text: &str, hash: u64, type_id: u16, value: &str) -> bool {
        let start = (self.start_and_type & ((1 << 48) - 1)) as usize;
        self.hash == hash
            && (self.start_and_type >> 48) as u16 == type_id
            && self.len as usize == value.len()
            && &text[start..start + value.len()] == value
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Values back to back.
    text: String,
    /// Per local number: where its value ends in `text`, its type and its hash.
    ends: Vec<u64>,
    types: Vec<u16>,
    hashes: Vec<u64>,
    slots: HashTable<Slot>,
}

impl Shard {
    fn value(&self, local: u32) -> &str {
        let local = local as usize;
        let start = if local == 0 { 0 } else { self.ends[local - 1] };
        &self.text[start as usize..self.ends[local] as usize]
    }

    fn find(&self, type_id: u16, value: &str, hash: u64) -> Option<u32> {
        let text = &self.text;
        let slot = self
            .slots
            .find(hash, |slot| slot.matches(text, hash, type_id, value))?;
        Some(slot.local)
    }

    fn find_or_insert(
        &mut self,
        type_id: u16,
        value: &str,
        hash: u64,
        insert: bool,
    ) -> Option<u32> {
        if let Some(local) = self.find(type_id, value, hash) {
            return Some(local);
        }
        if !insert {
            return None;
        }
        let local = u32::try_from(self.ends.len())
            .ok()
            .filter(|&local| local != NONE)
            .expect("fewer than 2^32 identifiers per shard");
        let start = self.text.len() as u64;
        assert!(start < 1 << 48, "less than 256 TiB of identifier text");
        self.text.push_str(value);
        self.ends.push(self.text.len() as u64);
        self.types.push(type_id);
        self.hashes.push(hash);
        let slot = Slot {
            hash,
            start_and_type: start | (u64::from(type_id) << 48),
            len: u32::try_from(value.len()).expect("an identifier under 4 GiB"),
            local,
        };
        self.slots.insert_unique(hash, slot, |slot| slot.hash);
        Some(local)
    }
}

/// Interned identifiers, in shards.
#[derive(Debug)]
pub struct Interner {
    shards: Vec<Shard>,
    /// The per-shard buffers of earlier batches, emptied and kept for the next: a fresh set
    /// per batch would fault in (and zero) tens of MB of new pages every time.
    spare_buffers: Vec<Vec<ShardBuffer>>,
}

impl Default for Interner {
    fn default() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }
}

/// The keys of one batch that belong to one shard, with copies of their values, in input
/// order: a shard is filled by reading its buffers front to back.
#[derive(Debug, Default)]
struct ShardBuffer {
    text: String,
    keys: Vec<BufferedKey>,
}

#[derive(Debug, Clone, Copy)]
struct BufferedKey {
    hash: u64,
    /// Where the node goes in the batch's result.
    slot: u32,
    /// Where the value ends in the buffer's text.
    end: u32,
    type_id: u16,
}

impl ShardBuffer {
    fn clear(&mut self) {
        self.text.clear();
        self.keys.clear();
    }

    fn push(&mut self, hash: u64, slot: usize, key: &Key<'_>) {
        self.text.push_str(key.value);
        self.keys.push(BufferedKey {
            hash,
            slot: u32::try_from(slot).expect("fewer than 2^32 keys per batch"),
            end: u32::try_from(self.text.len()).expect("under 4 GiB of keys per batch"),
            type_id: key.id_type.id,
        });
    }

    /// (key, its value) in input order.
    fn keys(&self) -> impl Iterator<Item = (&BufferedKey, &str)> {
        let mut start = 0;
        self.keys.iter().map(move |key| {
            let value = &self.text[start..key.end as usize];
            start = key.end as usize;
            (key, value)
        })
    }
}

impl Interner {
    pub fn with_shards(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Shard::default()).collect(),
            spare_buffers: Vec::new(),
        }
    }

    fn split(&self, node: u32) -> (&Shard, u32) {
        let shards = self.shards.len() as u32;
        (&self.shards[(node % shards) as usize], node / shards)
    }

    /// The node numbers of `keys`, in order. New keys are added when `insert` is on;
    /// otherwise unknown keys give [`NONE`].
    pub fn intern(&mut self, keys: &[Key<'_>], insert: bool) -> Vec<u32> {
        self.intern_segments(&[keys.len()], |_, i| Some(keys[i]), insert)
    }

    /// [`Interner::intern`] over keys produced in place: segment `s` has `lengths[s]`
    /// slots, and `key_at(s, i)` is the key in slot `i` (`None` leaves it [`NONE`]). The
    /// nodes come back flat, segment after segment. Each shard's thread reads the keys
    /// itself, so nothing is gathered into a list first.
    pub fn intern_segments<'k>(
        &mut self,
        lengths: &[usize],
        key_at: impl Fn(usize, usize) -> Option<Key<'k>> + Sync,
        insert: bool,
    ) -> Vec<u32> {
        let total: usize = lengths.iter().sum();
        let shards = self.shards.len();
        let parallel = total >= PARALLEL_FROM_KEYS;
        let mut firsts = Vec::with_capacity(lengths.len());
        let mut next = 0;
        for &length in lengths {
            firsts.push(next);
            next += length;
        }
        // 1. Sort the keys into per-shard buffers, the segments split over the cores.
        let segments: Vec<usize> = (0..lengths.len()).collect();
        let spares = Mutex::new(std::mem::take(&mut self.spare_buffers));
        let buffer_run = |run: &[usize]| -> Vec<ShardBuffer> {
            let spare = spares.lock().expect("no panics while held").pop();
            let mut buffers =
                spare.unwrap_or_else(|| (0..shards).map(|_| ShardBuffer::default()).collect());
            for &segment in run {
                for i in 0..lengths[segment] {
                    if let Some(key) = key_at(segment, i) {
                        let hash = value_hash(key.id_type.seed, key.value);
                        buffers[shard_of(hash, shards)].push(hash, firsts[segment] + i, &key);
                    }
                }
            }
            buffers
        };
        let runs = if parallel {
            parallel_runs(&segments, buffer_run)
        } else {
            vec![buffer_run(&segments)]
        };
        // 2. Fill each shard from its buffers, the shards split over the cores.
        let nodes: Vec<AtomicU32> = (0..total).map(|_| AtomicU32::new(NONE)).collect();
        let fill = |index: usize, shard: &mut Shard| {
            for buffers in &runs {
                for (key, value) in buffers[index].keys() {
                    if let Some(local) = shard.find_or_insert(key.type_id, value, key.hash, insert)
                    {
                        let node = node_number(local, index, shards);
                        nodes[key.slot as usize].store(node, Ordering::Relaxed);
                    }
                }
            }
        };
        let per_core = if parallel {
            shards.div_ceil(cores())
        } else {
            shards
        };
        std::thread::scope(|scope| {
            let mut groups = self.shards.chunks_mut(per_core).enumerate();
            let (_, first) = groups.next().expect("one shard");
            for (group, group_shards) in groups {
                let fill = &fill;
                scope.spawn(move || {
                    for (offset, shard) in group_shards.iter_mut().enumerate() {
                        fill(group * per_core + offset, shard);
                    }
                });
            }
            for (index, shard) in first.iter_mut().enumerate() {
                fill(index, shard);
            }
        });
        self.spare_buffers = runs;
        for buffers in &mut self.spare_buffers {
            buffers.iter_mut().for_each(ShardBuffer::clear);
        }
        nodes.into_iter().map(AtomicU32::into_inner).collect()
    }

    /// Frees the buffers kept for further batches, once interning is over.
    pub fn done_interning(&mut self) {
        self.spare_buffers = Vec::new();
    }

    pub fn value(&self, node: u32) -> &str {
        let (shard, local) = self.split(node);
        shard.value(local)
    }

    pub fn type_id(&self, node: u32) -> u16 {
        let (shard, local) = self.split(node);
        shard.types[local as usize]
    }

    pub fn hash(&self, node: u32) -> u64 {
        let (shard, local) = self.split(node);
        shard.hashes[local as usize]
    }

    /// How many identifiers are interned.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.ends.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the highest node number: the length of a vector indexed by node.
    pub fn node_bound(&self) -> usize {
        let longest = self.shards.iter().map(|s| s.ends.len()).max().unwrap_or(0);
        longest * self.shards.len()
    }

    /// The nodes of shard `index`, in insertion order.
    fn shard_nodes(&self, index: usize) -> impl Iterator<Item = u32> + '_ {
        let shards = self.shards.len();
        (0..self.shards[index].ends.len() as u32)
            .map(move |local| node_number(local, index, shards))
    }

    /// Every node, shard by shard in insertion order: the order that reads the values
    /// from memory front to back.
    pub fn nodes(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.shards.len()).flat_map(|index| self.shard_nodes(index))
    }

    /// Runs `each` on the nodes of every shard, the shards side by side on the cores, and
    /// gathers what it returns in shard order.
    pub fn per_shard<T: Send>(
        &self,
        each: impl Fn(&mut dyn Iterator<Item = u32>) -> T + Sync,
    ) -> Vec<T> {
        let indexes: Vec<usize> = (0..self.shards.len()).collect();
        let run = |&index: &usize| each(&mut self.shard_nodes(index));
        if self.len() < PARALLEL_FROM_KEYS {
            return indexes.iter().map(run).collect();
        }
        parallel_map(&indexes, run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16, value: &str) -> Key<'_> {
        Key {
            id_type: IdType {
                id,
                seed: u64::from(id),
            },
            value,
        }
    }

    #[test]
    fn equal_keys_share_a_node_whatever_the_shard_count() {
        let values: Vec<String> = (0..50_000).map(|i| format!("v{}", i % 20_000)).collect();
        for shards in [1, 2, 3, DEFAULT_SHARDS] {
            let mut interner = Interner::with_shards(shards);
            let keys: Vec<Key<'_>> = values.iter().map(|v| key(1, v)).collect();
            let nodes = interner.intern(&keys, true);
            assert_eq!(interner.len(), 20_000);
            for (value, &node) in values.iter().zip(&nodes) {
                assert_eq!(interner.value(node), value);
                assert_eq!(interner.intern(&[key(1, value)], false), vec![node]);
            }
            // Same value, other type: another identifier.
            let again = interner.intern(&[key(2, "v1"), key(1, "v1")], false);
            assert_eq!(again, vec![NONE, nodes[1]]);
            let mut seen: Vec<u32> = interner.nodes().collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 20_000);
            assert!(seen.iter().all(|&n| (n as usize) < interner.node_bound()));
        }
    }
}
