//! Packing prefixes into UPDATE messages under the session's maximum message length.
//!
//! The RIB does not encode; it estimates the encoded size with an upper bound (every
//! attribute counted with the 4-octet extended-length header; on 2-octet sessions AS4_PATH
//! and AS4_AGGREGATOR counted in addition), so a packed UPDATE always fits.

use ipnet::IpNet;

use crate::wire::{
    AsPath, Family, MpNextHop, MpReach, MpUnreach, Nlri, PathAttributes, SessionContext, Update,
};

/// Header (19) + withdrawn routes length (2) + total path attribute length (2).
const FIXED: usize = 23;
/// Upper bound of one attribute header (flags, type, 2-octet length).
const ATTR_HDR: usize = 4;

fn as_path_len(p: &AsPath) -> usize {
    p.segments.iter().map(|s| 2 + 4 * s.asns.len()).sum()
}

/// Upper bound of the encoded path attributes, excluding NLRI inside MP_REACH/MP_UNREACH.
pub fn attrs_len(a: &PathAttributes, ctx: &SessionContext) -> usize {
    let mut n = 0;
    let mut add = |v: usize| n += ATTR_HDR + v;
    if a.origin.is_some() {
        add(1);
    }
    if let Some(p) = &a.as_path {
        add(as_path_len(p));
        if !ctx.four_octet_as {
            add(as_path_len(p));
        }
    }
    if a.next_hop.is_some() {
        add(4);
    }
    if a.med.is_some() {
        add(4);
    }
    if a.local_pref.is_some() {
        add(4);
    }
    if a.atomic_aggregate {
        add(0);
    }
    if a.aggregator.is_some() {
        add(8);
        if !ctx.four_octet_as {
            add(8);
        }
    }
    if !a.communities.is_empty() {
        add(4 * a.communities.len());
    }
    if a.originator_id.is_some() {
        add(4);
    }
    if !a.cluster_list.is_empty() {
        add(4 * a.cluster_list.len());
    }
    if let Some(mp) = &a.mp_reach {
        add(5 + mp.next_hop.encoded_len());
    }
    if a.mp_unreach.is_some() {
        add(3);
    }
    if !a.ext_communities.is_empty() {
        add(8 * a.ext_communities.len());
    }
    if !a.large_communities.is_empty() {
        add(12 * a.large_communities.len());
    }
    for u in &a.unknown {
        add(u.value.len());
    }
    n
}

/// Whether one UPDATE announcing a single prefix of `family` with `attrs` (as exported)
/// fits the session's maximum message length. A route that does not fit cannot be sent
/// at all (RFC 4271 9.2: such a route is not advertised; the peer must not keep an older
/// version).
pub fn fits_one(family: Family, attrs: &PathAttributes, ctx: &SessionContext) -> bool {
    let prefix_octets = if family.afi == crate::wire::Afi::IPV4 {
        4
    } else {
        16
    };
    let path_id = if ctx.add_path(family) { 4 } else { 0 };
    let one_nlri = 1 + prefix_octets + path_id;
    FIXED
        .saturating_add(attrs_len(attrs, ctx))
        .saturating_add(one_nlri)
        <= ctx.max_message_len()
}

/// Encoded size of one NLRI entry.
pub fn nlri_len(n: &Nlri) -> usize {
    1 + usize::from(n.prefix.prefix_len()).div_ceil(8) + if n.path_id.is_some() { 4 } else { 0 }
}

fn to_nlri(prefix: IpNet, family: Family, ctx: &SessionContext) -> Nlri {
    if ctx.add_path(family) {
        // We advertise one path per prefix; its identifier is 1.
        Nlri::with_path_id(prefix, 1)
    } else {
        Nlri::new(prefix)
    }
}

/// Split `items` into chunks whose encoded NLRI fit in `room` octets each (at least one
/// entry per chunk, so progress is guaranteed even for absurd attribute sizes).
fn chunks(items: Vec<Nlri>, room: usize) -> Vec<Vec<Nlri>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for n in items {
        let l = nlri_len(&n);
        if !cur.is_empty() && used + l > room {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        used += l;
        cur.push(n);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// UPDATEs announcing `prefixes` of `family` with `attrs` (the attributes as exported: for
/// IPv4 unicast with NEXT_HOP set; otherwise with an `mp_reach` whose `nlri` is empty and is
/// filled here).
pub fn announce(
    family: Family,
    attrs: &PathAttributes,
    prefixes: &[IpNet],
    ctx: &SessionContext,
) -> Vec<Update> {
    if prefixes.is_empty() {
        return Vec::new();
    }
    let room = ctx
        .max_message_len()
        .saturating_sub(FIXED + attrs_len(attrs, ctx));
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| to_nlri(*p, family, ctx)).collect();
    let in_mp = family != Family::IPV4_UNICAST || attrs.mp_reach.is_some();
    chunks(nlri, room)
        .into_iter()
        .map(|chunk| {
            let mut a = attrs.clone();
            if in_mp {
                let mp = a.mp_reach.get_or_insert_with(|| {
                    MpReach::new(family, MpNextHop::Other(bytes::Bytes::new()), Vec::new())
                });
                mp.nlri = chunk;
                Update {
                    attributes: a,
                    ..Default::default()
                }
            } else {
                Update {
                    attributes: a,
                    nlri: chunk,
                    ..Default::default()
                }
            }
        })
        .collect()
}

/// UPDATEs withdrawing `prefixes` of `family`.
pub fn withdraw(family: Family, prefixes: &[IpNet], ctx: &SessionContext) -> Vec<Update> {
    if prefixes.is_empty() {
        return Vec::new();
    }
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| to_nlri(*p, family, ctx)).collect();
    if family == Family::IPV4_UNICAST {
        let room = ctx.max_message_len().saturating_sub(FIXED);
        chunks(nlri, room)
            .into_iter()
            .map(|c| Update {
                withdrawn: c,
                ..Default::default()
            })
            .collect()
    } else {
        let room = ctx.max_message_len().saturating_sub(FIXED + ATTR_HDR + 3);
        chunks(nlri, room)
            .into_iter()
            .map(|c| Update {
                attributes: PathAttributes {
                    mp_unreach: Some(MpUnreach::new(family, c)),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect()
    }
}

/// The End-of-RIB marker for `family` (RFC 4724 section 2).
pub fn end_of_rib(family: Family) -> Update {
    Update::end_of_rib_marker(family)
}

/// Whether `u` is an End-of-RIB marker, and for which family.
pub fn is_end_of_rib(u: &Update) -> Option<Family> {
    u.end_of_rib()
}

/// Upper bound of the encoded size of `u` (for tests and the driver's sanity checks).
pub fn update_len(u: &Update, ctx: &SessionContext) -> usize {
    let mp_nlri: usize = u
        .attributes
        .mp_reach
        .iter()
        .flat_map(|m| m.nlri.iter())
        .chain(
            u.attributes
                .mp_unreach
                .iter()
                .flat_map(|m| m.withdrawn.iter()),
        )
        .map(nlri_len)
        .sum();
    FIXED
        + attrs_len(&u.attributes, ctx)
        + mp_nlri
        + u.withdrawn.iter().map(nlri_len).sum::<usize>()
        + u.nlri.iter().map(nlri_len).sum::<usize>()
}
