//! The decision process: RFC 4271 9.1.2.2 with the RFC 4456 section 9 tie breakers, and
//! the multipath set.
//!
//! Order (each step only runs among the routes that survived the previous one; routes whose
//! next hop is unresolvable are removed before, 9.1.2.1):
//!
//! 1. highest degree of preference: LOCAL_PREF, 100 when absent (eBGP-learned routes have
//!    their LOCAL_PREF removed at import unless the import policy sets one);
//! 2. locally originated routes over learned ones (as FRR and Cisco do: their weight);
//! 3. a) shortest AS_PATH ([`AsPath::path_len`](crate::wire::AsPath::path_len): an AS_SET
//!    counts 1, confederation segments 0);
//! 4. b) lowest ORIGIN (IGP < EGP < INCOMPLETE; absent counts as INCOMPLETE);
//! 5. c) lowest MED among routes with the same neighbouring AS (the first AS of the path;
//!    routes with an empty path form one group), or among all routes with
//!    `always_compare_med`; an absent MED is 0;
//! 6. d) eBGP-learned over iBGP-learned (local routes count as eBGP here);
//! 7. e) lowest interior cost to the next hop: the speaker has no IGP, every cost is 0, so
//!    this step never decides;
//! 8. f) lowest BGP identifier of the advertising peer, where a route carrying ORIGINATOR_ID
//!    uses it instead (RFC 4456 9);
//! 9. shortest CLUSTER_LIST (RFC 4456 9);
//! 10. g) lowest peer address; then lowest received path identifier (add-path), so the
//!     choice is total and deterministic.
//!
//! **Multipath** (the FRR / BIRD definition): the routes that survive steps 1 to 7, i.e.
//! equal up to and including the IGP cost step, are equal-cost. The best route comes first,
//! then the others in tie-breaker order, at most `max_paths`. FRR additionally requires
//! eBGP multipaths to share the neighbouring AS unless `multipath-relax`; this RIB does not
//! (the agent's peers are route reflectors or ToRs of one AS).

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use crate::wire::{Origin, PathAttributes};

/// LOCAL_PREF assumed when a route has none (RFC 4271 leaves it to configuration; every
/// implementation uses 100).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// One route competing for a prefix, with the peer facts the decision needs.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub attrs: &'a PathAttributes,
    /// Locally originated.
    pub local: bool,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// The advertising peer's BGP identifier (ours for local routes).
    pub router_id: Ipv4Addr,
    /// The advertising peer's address (unspecified for local routes).
    pub peer_address: IpAddr,
    /// Received add-path identifier (0 without add-path).
    pub path_id: u32,
}

/// Decision options from [`crate::rib::RibConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionOptions {
    pub always_compare_med: bool,
    pub max_paths: usize,
}

/// The outcome for one prefix: indices into the candidate slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub best: usize,
    /// Equal-cost routes, best first, at most `max_paths` (always contains `best`).
    pub multipath: Vec<usize>,
}

fn local_pref(c: &Candidate<'_>) -> u32 {
    c.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
}

fn path_len(c: &Candidate<'_>) -> usize {
    c.attrs.as_path.as_ref().map_or(0, |p| p.path_len())
}

fn origin_rank(c: &Candidate<'_>) -> u8 {
    match c.attrs.origin {
        Some(Origin::Igp) => 0,
        Some(Origin::Egp) => 1,
        Some(Origin::Incomplete) | None => 2,
    }
}

fn med(c: &Candidate<'_>) -> u32 {
    c.attrs.med.unwrap_or(0)
}

fn neighbour_as(c: &Candidate<'_>) -> Option<u32> {
    c.attrs.as_path.as_ref().and_then(|p| p.first_asn())
}

/// The step f/g key: (BGP identifier or ORIGINATOR_ID, CLUSTER_LIST length, peer address,
/// path id), lowest wins.
fn tie_key(c: &Candidate<'_>) -> (Ipv4Addr, usize, IpAddr, u32) {
    (
        c.attrs.originator_id.unwrap_or(c.router_id),
        c.attrs.cluster_list.len(),
        c.peer_address,
        c.path_id,
    )
}

/// Keep the candidates maximising `key`.
fn keep_max<K: Ord>(alive: &mut Vec<(usize, Candidate<'_>)>, key: impl Fn(&Candidate<'_>) -> K) {
    if let Some(max) = alive.iter().map(|(_, c)| key(c)).max() {
        alive.retain(|(_, c)| key(c) == max);
    }
}

/// Run the decision process over `candidates` (already filtered for next-hop
/// resolvability). `None` when there are no candidates.
pub fn select(candidates: &[Candidate<'_>], opts: &DecisionOptions) -> Option<Selection> {
    if candidates.len() == 1 {
        return Some(Selection {
            best: 0,
            multipath: vec![0],
        });
    }
    let mut alive: Vec<(usize, Candidate<'_>)> = candidates.iter().copied().enumerate().collect();
    if alive.is_empty() {
        return None;
    }
    keep_max(&mut alive, local_pref);
    keep_max(&mut alive, |c| c.local);
    keep_max(&mut alive, |c| std::cmp::Reverse(path_len(c)));
    keep_max(&mut alive, |c| std::cmp::Reverse(origin_rank(c)));
    // MED: drop every route for which a comparable route has a lower MED.
    let snapshot = alive.clone();
    alive.retain(|(i, c)| {
        !snapshot.iter().any(|(j, o)| {
            j != i
                && (opts.always_compare_med || neighbour_as(o) == neighbour_as(c))
                && med(o) < med(c)
        })
    });
    keep_max(&mut alive, |c| c.ebgp || c.local);
    // Step e (IGP cost) never decides: all costs are 0.
    alive.sort_by_key(|(_, a)| tie_key(a));
    let best = alive.first()?.0;
    let multipath = alive
        .iter()
        .take(opts.max_paths.max(1))
        .map(|(i, _)| *i)
        .collect();
    Some(Selection { best, multipath })
}

/// Compare two candidates by the full procedure: `Less` when `a` is preferred. Useful for
/// status displays that sort a prefix's paths.
pub fn compare(a: &Candidate<'_>, b: &Candidate<'_>, opts: &DecisionOptions) -> Ordering {
    let pair = [*a, *b];
    match select(&pair, opts) {
        Some(Selection { best: 0, .. }) => Ordering::Less,
        Some(_) => Ordering::Greater,
        None => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AsPath, AsSegment, AsSegmentType};

    const OPTS: DecisionOptions = DecisionOptions {
        always_compare_med: false,
        max_paths: 1,
    };

    fn base() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![65001, 65010])),
            ..Default::default()
        }
    }

    fn cand(attrs: &PathAttributes, n: u8) -> Candidate<'_> {
        Candidate {
            attrs,
            local: false,
            ebgp: false,
            router_id: Ipv4Addr::new(10, 0, 0, n),
            peer_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
            path_id: 0,
        }
    }

    /// `worse` gets the lower router id and address so that only the step under test can
    /// make `better` win; both orders are tried.
    fn assert_wins(better: Candidate<'_>, worse: Candidate<'_>, opts: &DecisionOptions) {
        let s = select(&[better, worse], opts).unwrap();
        assert_eq!(s.best, 0);
        let s = select(&[worse, better], opts).unwrap();
        assert_eq!(s.best, 1);
    }

    #[test]
    fn step_local_pref() {
        let mut a = base();
        a.local_pref = Some(200);
        let b = base();
        assert_wins(cand(&a, 9), cand(&b, 1), &OPTS);
        // Absent LOCAL_PREF is 100: 99 loses to absent.
        let mut c = base();
        c.local_pref = Some(99);
        assert_wins(cand(&b, 9), cand(&c, 1), &OPTS);
    }

    #[test]
    fn step_local_origin() {
        let a = base();
        let b = base();
        let mut l = cand(&a, 9);
        l.local = true;
        assert_wins(l, cand(&b, 1), &OPTS);
    }

    #[test]
    fn step_as_path_len_with_set_counting_one() {
        let mut a = base();
        a.as_path = Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: AsSegmentType::Sequence,
                    asns: vec![65001],
                },
                AsSegment {
                    kind: AsSegmentType::Set,
                    asns: vec![1, 2, 3, 4],
                },
            ],
        });
        let mut b = base();
        b.as_path = Some(AsPath::from_sequence(vec![65001, 65002, 65003]));
        assert_wins(cand(&a, 9), cand(&b, 1), &OPTS);
    }

    #[test]
    fn step_origin() {
        let a = base();
        let mut b = base();
        b.origin = Some(Origin::Egp);
        assert_wins(cand(&a, 9), cand(&b, 1), &OPTS);
        let mut c = base();
        c.origin = Some(Origin::Incomplete);
        assert_wins(cand(&b, 9), cand(&c, 1), &OPTS);
    }

    #[test]
    fn step_med_same_neighbour_as_only() {
        let mut a = base();
        a.med = Some(10);
        let mut b = base();
        b.med = Some(20);
        assert_wins(cand(&a, 9), cand(&b, 1), &OPTS);
        // Different neighbouring AS: MED not compared, router id decides.
        let mut c = base();
        c.as_path = Some(AsPath::from_sequence(vec![65002, 65010]));
        c.med = Some(20);
        let s = select(&[cand(&a, 9), cand(&c, 1)], &OPTS).unwrap();
        assert_eq!(s.best, 1);
        // always_compare_med: MED decides.
        let opts = DecisionOptions {
            always_compare_med: true,
            ..OPTS
        };
        assert_wins(cand(&a, 9), cand(&c, 1), &opts);
        // Absent MED is 0, the best.
        let d = base();
        assert_wins(cand(&d, 9), cand(&a, 1), &OPTS);
    }

    #[test]
    fn step_ebgp_over_ibgp() {
        let a = base();
        let b = base();
        let mut e = cand(&a, 9);
        e.ebgp = true;
        assert_wins(e, cand(&b, 1), &OPTS);
    }

    #[test]
    fn step_router_id_and_originator_id() {
        let a = base();
        let b = base();
        assert_wins(cand(&a, 1), cand(&b, 9), &OPTS);
        // ORIGINATOR_ID replaces the router id.
        let mut c = base();
        c.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        assert_wins(cand(&c, 9), cand(&b, 2), &OPTS);
    }

    #[test]
    fn step_cluster_list_length() {
        let mut a = base();
        a.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
        a.cluster_list = vec![Ipv4Addr::new(9, 9, 9, 9)];
        let mut b = a.clone();
        b.cluster_list.push(Ipv4Addr::new(8, 8, 8, 8));
        assert_wins(cand(&a, 9), cand(&b, 1), &OPTS);
    }

    #[test]
    fn step_peer_address() {
        let a = base();
        let b = base();
        let mut x = cand(&a, 5);
        let mut y = cand(&b, 5);
        x.peer_address = "192.0.2.1".parse().unwrap();
        y.peer_address = "192.0.2.2".parse().unwrap();
        assert_wins(x, y, &OPTS);
    }

    #[test]
    fn multipath_equal_up_to_igp_cost() {
        let a = base();
        let b = base();
        let mut c = base();
        c.med = Some(5); // same neighbour AS, higher MED: not equal-cost
        let opts = DecisionOptions {
            max_paths: 4,
            ..OPTS
        };
        let s = select(&[cand(&a, 3), cand(&b, 2), cand(&c, 1)], &opts).unwrap();
        assert_eq!(s.best, 1);
        assert_eq!(s.multipath, vec![1, 0]);
        let opts = DecisionOptions {
            max_paths: 1,
            ..OPTS
        };
        let s = select(&[cand(&a, 3), cand(&b, 2)], &opts).unwrap();
        assert_eq!(s.multipath, vec![1]);
        assert_eq!(
            compare(&cand(&a, 3), &cand(&b, 2), &opts),
            Ordering::Greater
        );
        assert!(select(&[], &opts).is_none());
    }
}
