//! Import and export rules as free functions over attributes (no RIB state).

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::policy::{Policy, PolicyResult};
use crate::rib::decision::DEFAULT_LOCAL_PREF;
use crate::rib::peer::{NextHopMode, PeerInfo, RibConfig};
use crate::wire::{Community, Family, MpNextHop, MpReach, PathAttributes, SessionContext};

/// Why a received route was not accepted (it is treated as withdrawn).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// RFC 7606 treat-as-withdraw issue in the UPDATE.
    TreatAsWithdraw,
    /// Our AS is in the AS_PATH (RFC 4271 9.1.2).
    AsLoop,
    /// ORIGINATOR_ID is our router id (RFC 4456 8).
    OriginatorId,
    /// CLUSTER_LIST contains our cluster id (RFC 4456 8).
    ClusterLoop,
    /// No usable next hop for the family.
    NoNextHop,
    /// RFC 8212: eBGP peer without an import policy.
    Rfc8212,
    /// The import policy rejected it.
    Policy,
}

/// The attributes stored for routes of `family` from one UPDATE: MP_REACH/MP_UNREACH NLRI
/// removed; IPv4 unicast with an IPv4 next hop uses NEXT_HOP; every other family keeps an
/// `mp_reach` with the next hop and no NLRI. eBGP: LOCAL_PREF, ORIGINATOR_ID and
/// CLUSTER_LIST are dropped. `None` when the family has no next hop.
pub(crate) fn family_attrs(
    family: Family,
    received: &PathAttributes,
    ebgp: bool,
) -> Option<PathAttributes> {
    let mut a = received.clone();
    a.mp_unreach = None;
    let mp = a.mp_reach.take().filter(|m| m.family == family);
    if family == Family::IPV4_UNICAST {
        match mp.map(|m| m.next_hop) {
            Some(MpNextHop::Ipv4(nh)) => a.next_hop = Some(nh),
            Some(nh) => {
                a.next_hop = None;
                a.mp_reach = Some(MpReach::new(family, nh, Vec::new()));
            }
            None => {
                a.next_hop?;
            }
        }
    } else {
        let m = mp?;
        a.next_hop = None;
        a.mp_reach = Some(MpReach::new(family, m.next_hop, Vec::new()));
    }
    if ebgp {
        a.local_pref = None;
        a.originator_id = None;
        a.cluster_list.clear();
    }
    Some(a)
}

/// RFC 4271 / RFC 4456 loop checks on received attributes.
pub(crate) fn check_loops(
    cfg: &RibConfig,
    peer: &PeerInfo,
    a: &PathAttributes,
) -> Result<(), RejectReason> {
    if let Some(path) = &a.as_path {
        if path.contains(peer.local_as) || path.contains(cfg.local_as) {
            return Err(RejectReason::AsLoop);
        }
    }
    if a.originator_id == Some(cfg.router_id) {
        return Err(RejectReason::OriginatorId);
    }
    if let Some(cluster) = cfg.cluster_id {
        if a.cluster_list.contains(&cluster) {
            return Err(RejectReason::ClusterLoop);
        }
    }
    Ok(())
}

/// What an update group needs to know about its members (all members share it).
#[derive(Clone, Debug)]
pub(crate) struct GroupParams {
    pub ibgp: bool,
    pub rr_client: bool,
    pub local_as: u32,
    pub next_hop: NextHopMode,
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<std::net::Ipv6Addr>,
    pub families: Vec<Family>,
    pub send_ctx: SessionContext,
    pub export_policy: Option<Arc<Policy>>,
}

/// The identity of an update group: peers with equal keys share one Adj-RIB-Out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    ibgp: bool,
    rr_client: bool,
    local_as: u32,
    next_hop: NextHopMode,
    local_v4: Option<Ipv4Addr>,
    local_v6: Option<std::net::Ipv6Addr>,
    families: Vec<Family>,
    send_ctx: SessionContext,
    /// Pointer identity of the export policy `Arc`.
    export_policy: Option<usize>,
}

impl GroupParams {
    pub fn of(peer: &PeerInfo) -> Self {
        let mut families = peer.families.clone();
        families.sort();
        families.dedup();
        GroupParams {
            ibgp: peer.is_ibgp(),
            rr_client: peer.rr_client && peer.is_ibgp(),
            local_as: peer.local_as,
            next_hop: peer.next_hop,
            local_v4: peer.local_v4,
            local_v6: peer.local_v6,
            families,
            send_ctx: peer.send_ctx.clone(),
            export_policy: peer.export_policy.clone(),
        }
    }

    pub fn key(&self) -> GroupKey {
        GroupKey {
            ibgp: self.ibgp,
            rr_client: self.rr_client,
            local_as: self.local_as,
            next_hop: self.next_hop,
            local_v4: self.local_v4,
            local_v6: self.local_v6,
            families: self.families.clone(),
            send_ctx: self.send_ctx.clone(),
            export_policy: self.export_policy.as_ref().map(|p| Arc::as_ptr(p) as usize),
        }
    }
}

/// The facts about a route's source that export needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SourceMeta {
    pub local: bool,
    pub ibgp: bool,
    pub rr_client: bool,
    pub router_id: Ipv4Addr,
}

/// The attributes to advertise for the best route `attrs` of `prefix` to an update group,
/// or `None` when it must not be advertised (RFC 4271 9.1.3 and 5.1, RFC 4456 6, RFC 1997,
/// RFC 8212, export policy). Split horizon is not decided here: the caller excludes the
/// source peer from the recipients.
pub(crate) fn export_route(
    cfg: &RibConfig,
    g: &GroupParams,
    family: Family,
    prefix: &IpNet,
    attrs: &PathAttributes,
    src: &SourceMeta,
) -> Option<PathAttributes> {
    if !g.families.contains(&family) {
        return None;
    }
    if attrs.communities.contains(&Community::NO_ADVERTISE) {
        return None;
    }
    if !g.ibgp
        && (attrs.communities.contains(&Community::NO_EXPORT)
            || attrs.communities.contains(&Community::NO_EXPORT_SUBCONFED))
    {
        return None;
    }
    let reflected = !src.local && src.ibgp && g.ibgp;
    if reflected {
        // RFC 4456 6: only a reflector passes iBGP routes to iBGP peers; routes from
        // non-clients go to clients only.
        cfg.cluster_id?;
        if !src.rr_client && !g.rr_client {
            return None;
        }
    }
    if !g.ibgp && cfg.rfc8212_default_deny && g.export_policy.is_none() {
        return None;
    }
    let mut a = attrs.clone();
    if g.ibgp {
        a.local_pref = Some(a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        if reflected {
            if a.originator_id.is_none() {
                a.originator_id = Some(src.router_id);
            }
            if let Some(cluster) = cfg.cluster_id {
                a.cluster_list.insert(0, cluster);
            }
        }
    } else {
        a.local_pref = None;
        a.originator_id = None;
        a.cluster_list.clear();
        let from_other_as = a.as_path.as_ref().is_some_and(|p| !p.segments.is_empty());
        if from_other_as && !cfg.propagate_med && !src.local {
            a.med = None;
        }
    }
    if let Some(policy) = &g.export_policy {
        match policy.evaluate(family, prefix, &a) {
            PolicyResult::Reject => return None,
            PolicyResult::Accept(Some(m)) => a = *m,
            PolicyResult::Accept(None) => {}
        }
    }
    if !g.ibgp {
        a.as_path
            .get_or_insert_with(Default::default)
            .prepend(g.local_as, 1);
        a.local_pref = None;
    }
    if a.origin.is_none() {
        a.origin = Some(crate::wire::Origin::Igp);
    }
    if g.ibgp && a.as_path.is_none() {
        a.as_path = Some(Default::default());
    }
    let has_next_hop = a.next_hop.is_some() || a.mp_reach.is_some();
    let set_self = !has_next_hop
        || match g.next_hop {
            NextHopMode::Auto => !g.ibgp,
            NextHopMode::SelfAddr => !reflected,
            NextHopMode::Keep => false,
        };
    if set_self {
        if family == Family::IPV4_UNICAST {
            a.next_hop = Some(g.local_v4?);
            a.mp_reach = None;
        } else {
            let next_hop = match family.afi {
                crate::wire::Afi::IPV6 => MpNextHop::Ipv6 {
                    global: g.local_v6?,
                    link_local: None,
                },
                crate::wire::Afi::IPV4 => MpNextHop::Ipv4(g.local_v4?),
                _ => return None,
            };
            a.next_hop = None;
            a.mp_reach = Some(MpReach::new(family, next_hop, Vec::new()));
        }
    } else if let Some(MpReach {
        next_hop: MpNextHop::Ipv6 { link_local, .. },
        ..
    }) = a.mp_reach.as_mut()
    {
        // A kept (reflected or third-party) IPv6 next hop goes out without its link-local
        // part: that address only means something on the link where the route was learned,
        // and RFC 2545 section 3 allows it only when the receiver shares that link, which a
        // speaker passing the route on cannot know. Receivers resolve the global address
        // (FRR without interface data withdraws routes carrying a foreign link-local).
        *link_local = None;
    }
    if !crate::rib::pack::fits_one(family, &a, &g.send_ctx) {
        tracing::warn!(%prefix, "route not sent: its attributes do not fit one UPDATE for this peer group (the peer's maximum message length); a version sent earlier is withdrawn");
        return None;
    }
    Some(a)
}
