//! A cache bounded in bytes that evicts the least recently used entries first: a session
//! holds networks, weights, gradients and activations of several epochs, and at ResNet-50
//! scale each is about 100 MB.

use std::collections::HashMap;
use std::hash::Hash;

/// Values with their size in bytes, at most `budget` bytes in all.
pub(crate) struct ByteLru<K, V> {
    entries: HashMap<K, Entry<V>>,
    budget: usize,
    bytes: usize,
    clock: u64,
}

struct Entry<V> {
    value: V,
    bytes: usize,
    used: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> ByteLru<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        ByteLru { entries: HashMap::new(), budget, bytes: 0, clock: 0 }
    }

    /// The value of `key` (a clone: networks and `Arc`s share their storage), now the most
    /// recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<V> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        entry.used = self.clock;
        Some(entry.value.clone())
    }

    /// Keeps `value` (of `bytes` bytes), evicting the least recently used entries until it
    /// fits; a value larger than the whole budget is not kept.
    pub(crate) fn insert(&mut self, key: K, value: V, bytes: usize) {
        self.remove(&key);
        if bytes > self.budget {
            return;
        }
        while self.bytes + bytes > self.budget {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else {
                break;
            };
            self.remove(&oldest);
        }
        self.clock += 1;
        self.bytes += bytes;
        self.entries.insert(key, Entry { value, bytes, used: self.clock });
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.bytes;
        }
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// A new budget; entries are evicted, oldest first, until they fit.
    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        while self.bytes > self.budget {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else {
                break;
            };
            self.remove(&oldest);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::ByteLru;

    #[test]
    fn evicts_the_least_recently_used_until_it_fits() {
        let mut cache = ByteLru::new(10);
        cache.insert("a", 1, 4);
        cache.insert("b", 2, 4);
        assert_eq!(cache.get(&"a"), Some(1)); // b is now the oldest
        cache.insert("c", 3, 4);
        assert_eq!((cache.get(&"a"), cache.get(&"b"), cache.get(&"c")), (Some(1), None, Some(3)));
        assert_eq!(cache.bytes(), 8);
        cache.insert("huge", 4, 11);
        assert_eq!((cache.get(&"huge"), cache.bytes()), (None, 8));
        cache.set_budget(4);
        assert_eq!((cache.len(), cache.get(&"c")), (1, Some(3)));
        cache.insert("c", 5, 2);
        assert_eq!((cache.get(&"c"), cache.bytes()), (Some(5), 2));
    }
}
