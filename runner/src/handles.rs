//! The handle tables of the guest resources the runner's Spin interfaces
//! hand out (SQLite, Redis and MQTT connections), as Spin's
//! `spin_resource_table::Table`: a bounded map from the resource's rep.

use std::collections::HashMap;

/// Connections by handle (Spin's `spin_resource_table::Table`): at most
/// `capacity` open at once.
pub struct Table<T> {
    capacity: usize,
    next: u32,
    entries: HashMap<u32, T>,
}

impl<T> Table<T> {
    /// An empty table that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next: 0,
            entries: HashMap::new(),
        }
    }

    /// A new handle for `value`, or `None` when the table is full.
    pub fn push(&mut self, value: T) -> Option<u32> {
        if self.entries.len() >= self.capacity {
            return None;
        }
        while self.entries.contains_key(&self.next) {
            self.next = self.next.wrapping_add(1);
        }
        let rep = self.next;
        self.next = self.next.wrapping_add(1);
        self.entries.insert(rep, value);
        Some(rep)
    }

    /// The entry of handle `rep`.
    pub fn get(&self, rep: u32) -> Option<&T> {
        self.entries.get(&rep)
    }

    /// The entry of handle `rep`, mutably.
    pub fn get_mut(&mut self, rep: u32) -> Option<&mut T> {
        self.entries.get_mut(&rep)
    }

    /// Removes (and returns) the entry of handle `rep`.
    pub fn remove(&mut self, rep: u32) -> Option<T> {
        self.entries.remove(&rep)
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn a_full_table_refuses_until_an_entry_is_removed() {
        let mut table = Table::new(2);
        let a = table.push("a").unwrap();
        let b = table.push("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(table.push("c"), None);
        assert_eq!(table.remove(a), Some("a"));
        let c = table.push("c").unwrap();
        assert_eq!(table.get(c), Some(&"c"));
        assert_eq!(table.get(a), None);
    }
}
