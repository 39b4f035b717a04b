//! [`BestPathSubscription`]: best-path changes for one consumer, coalesced per prefix.
//!
//! A consumer that falls behind (a kernel programmer slower than a flapping peer) holds at
//! most one pending change per prefix, the latest, at the place of the first one not yet
//! read: memory is bounded by the table size, whatever the churn, and no final state is
//! lost.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use tokio::sync::Notify;

use crate::speaker::core::BestPathChange;

#[derive(Debug, Default)]
struct State {
    pending: HashMap<IpNet, BestPathChange>,
    order: VecDeque<IpNet>,
    /// The speaker stopped: `recv` returns `None` once the pending changes are read.
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still has a valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The receiving end ([`crate::speaker::Speaker::subscribe_best_paths`]).
#[derive(Debug)]
pub struct BestPathSubscription {
    shared: Arc<Shared>,
}

/// The speaker's end.
#[derive(Debug)]
pub(crate) struct BestPathSender {
    shared: Arc<Shared>,
}

/// A connected pair.
pub(crate) fn subscription() -> (BestPathSender, BestPathSubscription) {
    let shared = Arc::new(Shared::default());
    (
        BestPathSender {
            shared: Arc::clone(&shared),
        },
        BestPathSubscription { shared },
    )
}

impl BestPathSender {
    /// Queue `change`, replacing a pending change of the same prefix. `false`: the
    /// subscription was dropped.
    pub(crate) fn send(&self, change: BestPathChange) -> bool {
        if Arc::strong_count(&self.shared) < 2 {
            return false;
        }
        {
            let mut st = self.shared.lock();
            let prefix = change.prefix;
            if st.pending.insert(prefix, change).is_none() {
                st.order.push_back(prefix);
            }
        }
        self.shared.notify.notify_one();
        true
    }
}

impl Drop for BestPathSender {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.notify.notify_one();
    }
}

impl BestPathSubscription {
    /// The next change; `None` once the speaker has stopped and every change was read.
    pub async fn recv(&mut self) -> Option<BestPathChange> {
        loop {
            {
                let mut st = self.shared.lock();
                if let Some(c) = pop(&mut st) {
                    return Some(c);
                }
                if st.closed {
                    return None;
                }
            }
            self.shared.notify.notified().await;
        }
    }

    /// The next change if one is pending.
    pub fn try_recv(&mut self) -> Option<BestPathChange> {
        pop(&mut self.shared.lock())
    }

    /// Changes waiting to be read (at most one per prefix).
    pub fn pending(&self) -> usize {
        self.shared.lock().pending.len()
    }
}

fn pop(st: &mut State) -> Option<BestPathChange> {
    while let Some(p) = st.order.pop_front() {
        if let Some(c) = st.pending.remove(&p) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Family;

    fn change(prefix: &str, hops: usize) -> BestPathChange {
        BestPathChange {
            family: Family::IPV4_UNICAST,
            prefix: prefix.parse().unwrap(),
            best: None,
            multipath: (0..hops)
                .map(|i| std::net::IpAddr::from([10, 0, 0, u8::try_from(i).unwrap()]))
                .collect(),
        }
    }

    /// A reader that does not keep up holds one change per prefix (the latest), in the
    /// order the prefixes first changed.
    #[tokio::test]
    async fn a_slow_reader_holds_one_change_per_prefix() {
        let (tx, mut rx) = subscription();
        for i in 0..100_000usize {
            assert!(tx.send(change("10.1.0.0/24", i % 7)));
            assert!(tx.send(change("10.2.0.0/24", i % 5)));
        }
        assert_eq!(rx.pending(), 2);
        let a = rx.recv().await.unwrap();
        assert_eq!(a.prefix, "10.1.0.0/24".parse::<IpNet>().unwrap());
        assert_eq!(a.multipath.len(), 99_999 % 7, "the latest change");
        let b = rx.recv().await.unwrap();
        assert_eq!(b.multipath.len(), 99_999 % 5);
        assert!(rx.try_recv().is_none());
        // The sender going away ends the stream after the pending changes.
        tx.send(change("10.3.0.0/24", 1));
        drop(tx);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn recv_wakes_on_send_and_a_dropped_subscription_is_reported() {
        let (tx, mut rx) = subscription();
        let reader = tokio::spawn(async move {
            let c = rx.recv().await;
            (c, rx)
        });
        tokio::task::yield_now().await;
        assert!(tx.send(change("10.1.0.0/24", 1)));
        let (c, rx) = reader.await.unwrap();
        assert!(c.is_some());
        drop(rx);
        assert!(!tx.send(change("10.1.0.0/24", 1)), "receiver gone");
    }
}
