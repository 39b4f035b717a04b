//! Import and export policy: ordered rules with match conditions and actions, configured in
//! TOML (or any serde format) and compiled into typed [`Policy`] values at load.
//!
//! ```toml
//! [[policy]]
//! name = "from-tor"
//! default = "reject"            # when no rule decides; "accept" or "reject" (default reject)
//!
//! [[policy.rule]]
//! # All listed conditions must hold; inside one list any element may match.
//! match.prefix = [{ prefix = "10.244.0.0/16", ge = 24, le = 26 }]   # no ge/le: exact
//! match.community = ["65000:100", "no-export"]
//! match.large_community = ["65000:1:2"]
//! match.next_hop = ["192.0.2.0/24"]
//! match.as_path_contains = [65010]
//! match.neighbor_as = [65001]           # first AS of the AS_PATH
//! match.family = ["ipv4-unicast"]
//! action = "accept"                     # "accept", "reject" or "next" (apply `set`, go on)
//! set.local_pref = 200
//! set.med = 10
//! set.communities = ["65000:1"]         # replace all standard communities
//! set.add_communities = ["65000:2"]
//! set.remove_communities = ["65000:100"]
//! set.large_communities = []            # replace; add_/remove_large_communities likewise
//! set.prepend = { asn = 65000, count = 2 }
//! ```
//!
//! Prefix ranges follow the usual `ge`/`le` rule: the route's prefix must lie inside
//! `prefix` and its length must be in `ge..=le`. Neither given means exactly the length of
//! `prefix`; only `le` means `len(prefix)..=le`; only `ge` means `ge..=32` (or 128).
//! Communities are `ASN:VALUE` or a well-known name, large communities `G:L1:L2`.
//! Errors name the policy and the field path (`rule[0].match.prefix[1].le`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::wire::{Community, Family, LargeCommunity, MpNextHop, PathAttributes};

// ---------------------------------------------------------------------------------------
// Configuration (serde) types.

/// One policy as written in a config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    /// Verdict when no rule accepts or rejects. Default: reject.
    #[serde(default)]
    pub default: Verdict,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

/// Final verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    #[default]
    Reject,
}

/// What a matching rule does after applying its `set` actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Accept,
    Reject,
    /// Keep the modifications and go on with the next rule.
    Next,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    pub action: RuleAction,
    #[serde(default)]
    pub set: SetConfig,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default)]
    pub prefix: Vec<PrefixRangeConfig>,
    #[serde(default)]
    pub community: Vec<String>,
    #[serde(default)]
    pub large_community: Vec<String>,
    #[serde(default)]
    pub next_hop: Vec<String>,
    #[serde(default)]
    pub as_path_contains: Vec<u32>,
    #[serde(default)]
    pub neighbor_as: Vec<u32>,
    #[serde(default)]
    pub family: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRangeConfig {
    pub prefix: String,
    #[serde(default)]
    pub ge: Option<u8>,
    #[serde(default)]
    pub le: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetConfig {
    #[serde(default)]
    pub local_pref: Option<u32>,
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub communities: Option<Vec<String>>,
    #[serde(default)]
    pub add_communities: Vec<String>,
    #[serde(default)]
    pub remove_communities: Vec<String>,
    #[serde(default)]
    pub large_communities: Option<Vec<String>>,
    #[serde(default)]
    pub add_large_communities: Vec<String>,
    #[serde(default)]
    pub remove_large_communities: Vec<String>,
    #[serde(default)]
    pub prepend: Option<PrependConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrependConfig {
    pub asn: u32,
    #[serde(default = "one")]
    pub count: u8,
}

fn one() -> u8 {
    1
}

/// A policy configuration error, naming the policy and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy:?}: {field}: {message}")]
pub struct PolicyError {
    pub policy: String,
    /// Path of the offending field, e.g. `rule[0].match.prefix[1].le`.
    pub field: String,
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Compiled (typed) policy.

/// A prefix with a length range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrefixRange {
    pub prefix: IpNet,
    pub ge: u8,
    pub le: u8,
}

impl PrefixRange {
    /// Whether `p` lies inside the range's prefix with a length in `ge..=le`.
    pub fn matches(&self, p: &IpNet) -> bool {
        let len = p.prefix_len();
        len >= self.ge && len <= self.le && self.prefix.contains(p)
    }
}

/// Match conditions: all non-empty lists must match (any element of a list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    pub prefixes: Vec<PrefixRange>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub next_hops: Vec<IpNet>,
    pub as_path_contains: Vec<u32>,
    pub neighbor_as: Vec<u32>,
    pub families: Vec<Family>,
}

/// Attribute modifications.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Modifications {
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub communities: Option<Vec<Community>>,
    pub add_communities: Vec<Community>,
    pub remove_communities: Vec<Community>,
    pub large_communities: Option<Vec<LargeCommunity>>,
    pub add_large_communities: Vec<LargeCommunity>,
    pub remove_large_communities: Vec<LargeCommunity>,
    /// (AS, count)
    pub prepend: Option<(u32, u8)>,
}

impl Modifications {
    pub fn is_empty(&self) -> bool {
        *self == Modifications::default()
    }

    /// Apply to `a`.
    pub fn apply(&self, a: &mut PathAttributes) {
        if let Some(lp) = self.local_pref {
            a.local_pref = Some(lp);
        }
        if let Some(med) = self.med {
            a.med = Some(med);
        }
        if let Some(c) = &self.communities {
            a.communities = c.clone();
        }
        a.communities
            .retain(|c| !self.remove_communities.contains(c));
        for c in &self.add_communities {
            if !a.communities.contains(c) {
                a.communities.push(*c);
            }
        }
        if let Some(c) = &self.large_communities {
            a.large_communities = c.clone();
        }
        a.large_communities
            .retain(|c| !self.remove_large_communities.contains(c));
        for c in &self.add_large_communities {
            if !a.large_communities.contains(c) {
                a.large_communities.push(*c);
            }
        }
        if let Some((asn, count)) = self.prepend {
            a.as_path
                .get_or_insert_with(Default::default)
                .prepend(asn, usize::from(count));
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conditions: Match,
    pub action: RuleAction,
    pub set: Modifications,
}

/// A compiled policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub default: Verdict,
    pub rules: Vec<Rule>,
}

/// The outcome of evaluating a policy for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyResult {
    /// Accepted; `Some` holds the modified attributes, `None` means unchanged.
    Accept(Option<Box<PathAttributes>>),
    Reject,
}

/// The next hop of a route for matching: NEXT_HOP, else the MP_REACH next hop.
pub fn route_next_hop(attrs: &PathAttributes) -> Option<IpAddr> {
    if let Some(nh) = attrs.next_hop {
        return Some(IpAddr::V4(nh));
    }
    match attrs.mp_reach.as_ref().map(|m| &m.next_hop) {
        Some(MpNextHop::Ipv4(a)) => Some(IpAddr::V4(*a)),
        Some(MpNextHop::Ipv6 { global, .. }) => Some(IpAddr::V6(*global)),
        Some(MpNextHop::Other(_)) | None => None,
    }
}

impl Match {
    pub fn matches(&self, family: Family, prefix: &IpNet, a: &PathAttributes) -> bool {
        if !self.families.is_empty() && !self.families.contains(&family) {
            return false;
        }
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|r| r.matches(prefix)) {
            return false;
        }
        if !self.communities.is_empty()
            && !self.communities.iter().any(|c| a.communities.contains(c))
        {
            return false;
        }
        if !self.large_communities.is_empty()
            && !self
                .large_communities
                .iter()
                .any(|c| a.large_communities.contains(c))
        {
            return false;
        }
        if !self.next_hops.is_empty() {
            let Some(nh) = route_next_hop(a) else {
                return false;
            };
            if !self.next_hops.iter().any(|n| n.contains(&nh)) {
                return false;
            }
        }
        if !self.as_path_contains.is_empty() {
            let Some(path) = &a.as_path else {
                return false;
            };
            if !self.as_path_contains.iter().any(|asn| path.contains(*asn)) {
                return false;
            }
        }
        if !self.neighbor_as.is_empty() {
            let first = a.as_path.as_ref().and_then(|p| p.first_asn());
            if !first.is_some_and(|f| self.neighbor_as.contains(&f)) {
                return false;
            }
        }
        true
    }
}

impl Policy {
    /// A policy with no rules and the given default.
    pub fn with_default(name: &str, default: Verdict) -> Self {
        Policy {
            name: name.to_owned(),
            default,
            rules: Vec::new(),
        }
    }

    /// Evaluate for one route. Rules run in order; the first matching rule with action
    /// accept or reject decides; `next` rules apply their modifications and continue.
    pub fn evaluate(&self, family: Family, prefix: &IpNet, attrs: &PathAttributes) -> PolicyResult {
        let mut modified: Option<Box<PathAttributes>> = None;
        for rule in &self.rules {
            let current = modified.as_deref().unwrap_or(attrs);
            if !rule.conditions.matches(family, prefix, current) {
                continue;
            }
            if rule.action == RuleAction::Reject {
                return PolicyResult::Reject;
            }
            if !rule.set.is_empty() {
                let mut a = modified.take().unwrap_or_else(|| Box::new(attrs.clone()));
                rule.set.apply(&mut a);
                modified = Some(a);
            }
            if rule.action == RuleAction::Accept {
                return PolicyResult::Accept(modified);
            }
        }
        match self.default {
            Verdict::Accept => PolicyResult::Accept(modified),
            Verdict::Reject => PolicyResult::Reject,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compilation.

/// Parse a standard community: `ASN:VALUE` (16 bits each) or a well-known name
/// (`no-export`, `no-advertise`, `no-export-subconfed`, `graceful-shutdown`, `blackhole`).
pub fn parse_community(s: &str) -> Result<Community, String> {
    match s {
        "no-export" => return Ok(Community::NO_EXPORT),
        "no-advertise" => return Ok(Community::NO_ADVERTISE),
        "no-export-subconfed" => return Ok(Community::NO_EXPORT_SUBCONFED),
        "graceful-shutdown" => return Ok(Community(0xFFFF_0000)),
        "blackhole" => return Ok(Community(0xFFFF_029A)),
        _ => {}
    }
    let bad = || {
        format!("{s:?} is not a community, use ASN:VALUE with 16-bit numbers like 65000:100 or a well-known name like no-export")
    };
    let (a, v) = s.split_once(':').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let v: u16 = v.trim().parse().map_err(|_| bad())?;
    Ok(Community::new(a, v))
}

/// Parse a large community `GLOBAL:LOCAL1:LOCAL2` (32 bits each).
pub fn parse_large_community(s: &str) -> Result<LargeCommunity, String> {
    let bad = || format!("{s:?} is not a large community, use three 32-bit numbers like 65000:1:2");
    let mut it = s.split(':').map(|p| p.trim().parse::<u32>());
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(Ok(g)), Some(Ok(l1)), Some(Ok(l2)), None) => Ok(LargeCommunity {
            global_admin: g,
            local_data1: l1,
            local_data2: l2,
        }),
        _ => Err(bad()),
    }
}

/// Parse a family name: `ipv4-unicast` (or `ipv4`), `ipv6-unicast` (or `ipv6`).
pub fn parse_family(s: &str) -> Result<Family, String> {
    match s {
        "ipv4-unicast" | "ipv4" => Ok(Family::IPV4_UNICAST),
        "ipv6-unicast" | "ipv6" => Ok(Family::IPV6_UNICAST),
        _ => Err(format!(
            "{s:?} is not a supported family, use ipv4-unicast or ipv6-unicast"
        )),
    }
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s.parse().map_err(|_| {
        format!("{s:?} is not a prefix, use ADDRESS/LENGTH like 10.0.0.0/8 or fd00::/8")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set, use {} instead",
            net.trunc()
        ));
    }
    Ok(net)
}

struct Ctx<'a> {
    policy: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: String, message: String) -> PolicyError {
        PolicyError {
            policy: self.policy.to_owned(),
            field,
            message,
        }
    }

    fn list<T>(
        &self,
        field: &str,
        items: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, PolicyError> {
        items
            .iter()
            .enumerate()
            .map(|(i, s)| parse(s).map_err(|m| self.err(format!("{field}[{i}]"), m)))
            .collect()
    }
}

impl PrefixRangeConfig {
    fn compile(&self, ctx: &Ctx<'_>, field: &str) -> Result<PrefixRange, PolicyError> {
        let prefix = parse_net(&self.prefix).map_err(|m| ctx.err(format!("{field}.prefix"), m))?;
        let len = prefix.prefix_len();
        let max = prefix.max_prefix_len();
        let (ge, le) = match (self.ge, self.le) {
            (None, None) => (len, len),
            (None, Some(le)) => (len, le),
            (Some(ge), None) => (ge, max),
            (Some(ge), Some(le)) => (ge, le),
        };
        if ge < len || ge > max {
            return Err(ctx.err(
                format!("{field}.ge"),
                format!("ge {ge} must be between the prefix length {len} and {max}"),
            ));
        }
        if le < ge || le > max {
            return Err(ctx.err(
                format!("{field}.le"),
                format!("le {le} must be between ge {ge} and {max}"),
            ));
        }
        Ok(PrefixRange { prefix, ge, le })
    }
}

impl RuleConfig {
    fn compile(&self, ctx: &Ctx<'_>, field: &str) -> Result<Rule, PolicyError> {
        let m = &self.matches;
        let prefixes = m
            .prefix
            .iter()
            .enumerate()
            .map(|(i, p)| p.compile(ctx, &format!("{field}.match.prefix[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let conditions = Match {
            prefixes,
            communities: ctx.list(
                &format!("{field}.match.community"),
                &m.community,
                parse_community,
            )?,
            large_communities: ctx.list(
                &format!("{field}.match.large_community"),
                &m.large_community,
                parse_large_community,
            )?,
            next_hops: ctx.list(&format!("{field}.match.next_hop"), &m.next_hop, parse_net)?,
            as_path_contains: m.as_path_contains.clone(),
            neighbor_as: m.neighbor_as.clone(),
            families: ctx.list(&format!("{field}.match.family"), &m.family, parse_family)?,
        };
        let s = &self.set;
        let opt_list =
            |name: &str, v: &Option<Vec<String>>, f: fn(&str) -> Result<Community, String>| {
                v.as_ref()
                    .map(|v| ctx.list(&format!("{field}.set.{name}"), v, f))
                    .transpose()
            };
        let set = Modifications {
            local_pref: s.local_pref,
            med: s.med,
            communities: opt_list("communities", &s.communities, parse_community)?,
            add_communities: ctx.list(
                &format!("{field}.set.add_communities"),
                &s.add_communities,
                parse_community,
            )?,
            remove_communities: ctx.list(
                &format!("{field}.set.remove_communities"),
                &s.remove_communities,
                parse_community,
            )?,
            large_communities: s
                .large_communities
                .as_ref()
                .map(|v| {
                    ctx.list(
                        &format!("{field}.set.large_communities"),
                        v,
                        parse_large_community,
                    )
                })
                .transpose()?,
            add_large_communities: ctx.list(
                &format!("{field}.set.add_large_communities"),
                &s.add_large_communities,
                parse_large_community,
            )?,
            remove_large_communities: ctx.list(
                &format!("{field}.set.remove_large_communities"),
                &s.remove_large_communities,
                parse_large_community,
            )?,
            prepend: match s.prepend {
                None => None,
                Some(PrependConfig { count: 0, .. }) => {
                    return Err(ctx.err(
                        format!("{field}.set.prepend.count"),
                        "count 0 prepends nothing, use 1 to 16 or remove prepend".to_owned(),
                    ))
                }
                Some(PrependConfig { count, .. }) if count > 16 => {
                    return Err(ctx.err(
                        format!("{field}.set.prepend.count"),
                        format!("count {count} is too long a prepend, use at most 16"),
                    ))
                }
                Some(PrependConfig { asn, count }) => Some((asn, count)),
            },
        };
        if self.action == RuleAction::Reject && !set.is_empty() {
            return Err(ctx.err(
                format!("{field}.set"),
                "a rule with action \"reject\" cannot modify attributes, remove `set` or use action \"next\"".to_owned(),
            ));
        }
        Ok(Rule {
            conditions,
            action: self.action,
            set,
        })
    }
}

impl PolicyConfig {
    /// Validate into a typed [`Policy`].
    pub fn compile(&self) -> Result<Policy, PolicyError> {
        let ctx = Ctx { policy: &self.name };
        if self.name.trim().is_empty() {
            return Err(ctx.err(
                "name".to_owned(),
                "the policy name is empty, give it a name".to_owned(),
            ));
        }
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.compile(&ctx, &format!("rule[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            name: self.name.clone(),
            default: self.default,
            rules,
        })
    }
}

/// Compile a list of policies into a name -> policy map (names must be unique). Peers that
/// reference the same name get the same `Arc`, which lets them share an update group.
pub fn compile_all(configs: &[PolicyConfig]) -> Result<BTreeMap<String, Arc<Policy>>, PolicyError> {
    let mut out = BTreeMap::new();
    for c in configs {
        let p = c.compile()?;
        if out.insert(c.name.clone(), Arc::new(p)).is_some() {
            return Err(PolicyError {
                policy: c.name.clone(),
                field: "name".to_owned(),
                message: "another policy has the same name, rename one".to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
