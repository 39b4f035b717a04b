//! Hash-consing of path attributes.
//!
//! Every attribute set stored in the RIB (Adj-RIB-In, Loc-RIB, Adj-RIB-Out) is an
//! `Arc<PathAttributes>` obtained from one [`Interner`], so equal sets are one allocation and
//! equality of interned sets is pointer equality. Cleanup is by reference count: [`Interner::gc`]
//! drops the sets that only the interner still holds; the RIB runs it when the table has
//! doubled since the last collection.

use std::collections::HashSet;
use std::sync::Arc;

use crate::wire::PathAttributes;

/// The attribute interner.
#[derive(Debug, Default)]
pub struct Interner {
    set: HashSet<Arc<PathAttributes>>,
    len_after_gc: usize,
}

impl Interner {
    pub fn new() -> Self {
        Interner::default()
    }

    /// The shared copy of `attrs`.
    pub fn intern(&mut self, attrs: PathAttributes) -> Arc<PathAttributes> {
        if let Some(found) = self.set.get(&attrs) {
            return Arc::clone(found);
        }
        let arc = Arc::new(attrs);
        self.set.insert(Arc::clone(&arc));
        arc
    }

    /// The shared copy of an attribute set that may or may not come from this interner.
    pub fn intern_arc(&mut self, attrs: &Arc<PathAttributes>) -> Arc<PathAttributes> {
        if let Some(found) = self.set.get(attrs.as_ref()) {
            return Arc::clone(found);
        }
        self.set.insert(Arc::clone(attrs));
        Arc::clone(attrs)
    }

    /// Distinct attribute sets currently held (including unreferenced ones not yet collected).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Drop the sets nobody else references. Returns how many were dropped.
    pub fn gc(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.len_after_gc = self.set.len();
        before - self.set.len()
    }

    /// Collect when the table has grown past twice its size after the last collection
    /// (and past a floor of 1024 sets, so small tables never pay for it).
    pub fn maybe_gc(&mut self) -> usize {
        if self.set.len() > 1024 && self.set.len() > self.len_after_gc.saturating_mul(2) {
            self.gc()
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AsPath;

    #[test]
    fn equal_sets_share_one_allocation_and_gc_drops_unused() {
        let mut i = Interner::new();
        let a = PathAttributes {
            as_path: Some(AsPath::from_sequence(vec![65001])),
            ..Default::default()
        };
        let x = i.intern(a.clone());
        let y = i.intern(a.clone());
        assert!(Arc::ptr_eq(&x, &y));
        let z = i.intern(PathAttributes::default());
        assert_eq!(i.len(), 2);
        drop(z);
        assert_eq!(i.gc(), 1);
        assert_eq!(i.len(), 1);
        drop((x, y));
        assert_eq!(i.gc(), 1);
        assert!(i.is_empty());
    }
}
