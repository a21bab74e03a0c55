//! Host name -> value, laid out for cache-cold lookups.
//!
//! With thousands of hosts, a lookup's cost is the memory it has to fetch,
//! not the instructions. A map keyed by `Box<str>` fetches the bucket, then
//! the key's bytes from elsewhere on the heap, then the value. Here a host of
//! up to [`INLINE_HOST`] bytes is a fixed-size key stored in the bucket next
//! to its value, the pair padded to one 64-byte cache line: one fetch
//! compares the key and yields the value. Building the key lower-cases the
//! request's host as it copies it, so normalising costs nothing extra.
//! Longer hosts (rare) live in an ordinary map.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Longest host kept inline (bytes).
pub(crate) const INLINE_HOST: usize = 39;

/// A lower-cased host name of at most [`INLINE_HOST`] bytes, padded with zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct HostKey {
    len: u8,
    bytes: [u8; INLINE_HOST],
}

impl HostKey {
    /// The lower-cased key of `host` (port and trailing dot already
    /// stripped), or `None` when it is too long to be inline.
    #[inline]
    pub(crate) fn lowered(host: &str) -> Option<HostKey> {
        let src = host.as_bytes();
        if src.len() > INLINE_HOST {
            return None;
        }
        let mut bytes = [0u8; INLINE_HOST];
        for (dst, b) in bytes.iter_mut().zip(src) {
            *dst = b.to_ascii_lowercase();
        }
        Some(HostKey {
            len: src.len() as u8,
            bytes,
        })
    }

    /// The key of the host minus its first label (`a.b.c` -> `b.c`), the
    /// key of wildcard rules that could cover it; `None` without a dot
    /// separating two non-empty parts.
    #[inline]
    pub(crate) fn wildcard_suffix(&self) -> Option<HostKey> {
        let len = usize::from(self.len);
        let dot = self.bytes[..len].iter().position(|&b| b == b'.')?;
        if dot == 0 || dot + 1 >= len {
            return None;
        }
        let mut bytes = [0u8; INLINE_HOST];
        bytes[..len - dot - 1].copy_from_slice(&self.bytes[dot + 1..len]);
        Some(HostKey {
            len: (len - dot - 1) as u8,
            bytes,
        })
    }
}

/// A key and its value in one cache line (for values up to 24 bytes).
#[repr(align(64))]
struct Slot<V> {
    key: HostKey,
    value: V,
}

impl<V> Borrow<HostKey> for Slot<V> {
    fn borrow(&self) -> &HostKey {
        &self.key
    }
}

impl<V> Hash for Slot<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl<V> PartialEq for Slot<V> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<V> Eq for Slot<V> {}

/// Normalised (lower-case) host names -> `V`, read-only once built.
pub(crate) struct HostIndex<V> {
    inline: HashSet<Slot<V>, ahash::RandomState>,
    long: HashMap<Box<str>, V, ahash::RandomState>,
}

impl<V> HostIndex<V> {
    /// Indexes `hosts`, whose keys must already be lower-case.
    pub(crate) fn new(hosts: impl IntoIterator<Item = (Box<str>, V)>) -> Self {
        let mut inline = HashSet::default();
        let mut long = HashMap::default();
        for (host, value) in hosts {
            match HostKey::lowered(&host) {
                Some(key) => {
                    inline.insert(Slot { key, value });
                }
                None => {
                    long.insert(host, value);
                }
            }
        }
        inline.shrink_to_fit();
        long.shrink_to_fit();
        HostIndex { inline, long }
    }

    /// The value of an inline key.
    #[inline]
    pub(crate) fn get_key(&self, key: &HostKey) -> Option<&V> {
        if self.inline.is_empty() {
            return None;
        }
        self.inline.get(key).map(|slot| &slot.value)
    }

    /// The value of a normalised host of any length.
    pub(crate) fn get(&self, host: &str) -> Option<&V> {
        match HostKey::lowered(host) {
            Some(key) => self.get_key(&key),
            None => self.long.get(host),
        }
    }

    /// Whether no host is indexed.
    pub(crate) fn is_empty(&self) -> bool {
        self.inline.is_empty() && self.long.is_empty()
    }

    /// Hosts indexed.
    pub(crate) fn len(&self) -> usize {
        self.inline.len() + self.long.len()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for HostIndex<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostIndex")
            .field("hosts", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(hosts: &[&str]) -> HostIndex<usize> {
        HostIndex::new(hosts.iter().enumerate().map(|(i, h)| ((*h).into(), i)))
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot<[u64; 3]>>(), 64);
        assert_eq!(std::mem::align_of::<Slot<[u64; 3]>>(), 64);
    }

    #[test]
    fn inline_and_long_hosts_are_found() {
        let long = "a-rather-long-host-name.with-many-labels.example.com";
        assert!(long.len() > INLINE_HOST);
        let exactly = "a".repeat(INLINE_HOST);
        let i = index(&["example.com", long, &exactly]);
        assert_eq!(i.get("example.com"), Some(&0));
        assert_eq!(i.get(long), Some(&1));
        assert_eq!(i.get(&exactly), Some(&2));
        assert_eq!(i.get("example.org"), None);
        assert_eq!(i.get("example.co"), None, "no prefix match");
        assert_eq!(i.len(), 3);
    }

    #[test]
    fn keys_are_lowered_and_suffixes_drop_one_label() {
        let key = HostKey::lowered("Foo.BAR.com").unwrap();
        assert_eq!(key, HostKey::lowered("foo.bar.com").unwrap());
        let suffix = key.wildcard_suffix().unwrap();
        assert_eq!(suffix, HostKey::lowered("bar.com").unwrap());
        assert!(HostKey::lowered("localhost")
            .unwrap()
            .wildcard_suffix()
            .is_none());
        assert!(HostKey::lowered(".com")
            .unwrap()
            .wildcard_suffix()
            .is_none());
        assert!(HostKey::lowered("foo.")
            .unwrap()
            .wildcard_suffix()
            .is_none());
    }
}
