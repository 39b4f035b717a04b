//! CNI versions and the result object, parsed leniently from any supported version and
//! printed in the format of the version the runtime asked for.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::error::{code, CniError, CniResult};

/// Versions this plugin accepts, oldest first. 0.1.0/0.2.0 (the `ip4`/`ip6` result
/// format) are not supported.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version (used when a config does not say).
pub const LATEST: &str = "1.1.0";

/// A parsed `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parse "x.y.z".
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version(it.next()??, it.next()??, it.next()??);
        if it.next().is_some() {
            return None;
        }
        Some(v)
    }

    /// Results of this version carry `ips[].version` (removed in 1.0.0).
    pub fn has_ip_version_field(self) -> bool {
        self < Version(1, 0, 0)
    }

    /// CHECK exists from 0.4.0.
    pub fn supports_check(self) -> bool {
        self >= Version(0, 4, 0)
    }

    /// GC and STATUS exist from 1.1.0.
    pub fn supports_gc_status(self) -> bool {
        self >= Version(1, 1, 0)
    }
}

/// Check that `v` is one of [`SUPPORTED_VERSIONS`].
pub fn check_supported(v: &str) -> CniResult<Version> {
    match Version::parse(v) {
        Some(parsed) if SUPPORTED_VERSIONS.contains(&v) => Ok(parsed),
        _ => Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            format!("config is \"{v}\", plugin supports {SUPPORTED_VERSIONS:?}"),
        )),
    }
}

/// An interface of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// MAC address, lowercase colon form.
    pub mac: String,
    /// MTU (only printed for 1.1.0; 0 = unknown).
    pub mtu: u32,
    /// Network namespace path; empty for host interfaces.
    pub sandbox: String,
}

/// An IP configuration of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Address with prefix.
    pub address: IpNet,
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    pub interface: Option<usize>,
}

/// A route of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Next hop, if any.
    pub gw: Option<IpAddr>,
}

/// A CNI result (ADD output, IPAM output or `prevResult`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CniOutput {
    /// Interfaces.
    pub interfaces: Vec<Interface>,
    /// IP configurations.
    pub ips: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
    /// DNS object, passed through verbatim (`{}` when absent).
    pub dns: Value,
}

fn field_str<'a>(obj: &'a Map<String, Value>, key: &str, ctx: &str) -> CniResult<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(CniError::msg(
            code::DECODE,
            format!("{ctx}: field \"{key}\" must be a string"),
        )),
    }
}

fn parse_ip(s: &str, ctx: &str) -> CniResult<IpAddr> {
    s.parse()
        .map_err(|_| CniError::msg(code::DECODE, format!("{ctx}: \"{s}\" is not an IP address")))
}

fn parse_net(s: &str, ctx: &str) -> CniResult<IpNet> {
    s.parse().map_err(|_| {
        CniError::msg(
            code::DECODE,
            format!("{ctx}: \"{s}\" is not an address with prefix length (CIDR)"),
        )
    })
}

impl CniOutput {
    /// Parse a result of any supported version (0.3.0 and later share the shape; the
    /// `version` field of `ips` is ignored).
    pub fn parse(v: &Value, ctx: &str) -> CniResult<CniOutput> {
        let obj = v.as_object().ok_or_else(|| {
            CniError::msg(code::DECODE, format!("{ctx}: result is not an object"))
        })?;
        let mut out = CniOutput {
            dns: obj.get("dns").cloned().unwrap_or_else(|| json!({})),
            ..CniOutput::default()
        };
        if let Some(list) = obj.get("interfaces").and_then(Value::as_array) {
            for (i, it) in list.iter().enumerate() {
                let c = format!("{ctx}: interfaces[{i}]");
                let o = it
                    .as_object()
                    .ok_or_else(|| CniError::msg(code::DECODE, format!("{c} is not an object")))?;
                out.interfaces.push(Interface {
                    name: field_str(o, "name", &c)?.unwrap_or_default().to_string(),
                    mac: field_str(o, "mac", &c)?.unwrap_or_default().to_string(),
                    mtu: o
                        .get("mtu")
                        .and_then(Value::as_u64)
                        .and_then(|m| u32::try_from(m).ok())
                        .unwrap_or(0),
                    sandbox: field_str(o, "sandbox", &c)?.unwrap_or_default().to_string(),
                });
            }
        }
        if let Some(list) = obj.get("ips").and_then(Value::as_array) {
            for (i, it) in list.iter().enumerate() {
                let c = format!("{ctx}: ips[{i}]");
                let o = it
                    .as_object()
                    .ok_or_else(|| CniError::msg(code::DECODE, format!("{c} is not an object")))?;
                let address = field_str(o, "address", &c)?.ok_or_else(|| {
                    CniError::msg(code::DECODE, format!("{c}: \"address\" is missing"))
                })?;
                let interface = match o.get("interface") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                    Some(_) => {
                        return Err(CniError::msg(
                            code::DECODE,
                            format!("{c}: \"interface\" must be an index"),
                        ))
                    }
                };
                out.ips.push(IpConfig {
                    address: parse_net(address, &c)?,
                    gateway: field_str(o, "gateway", &c)?
                        .map(|g| parse_ip(g, &c))
                        .transpose()?,
                    interface,
                });
            }
        }
        if let Some(list) = obj.get("routes").and_then(Value::as_array) {
            for (i, it) in list.iter().enumerate() {
                let c = format!("{ctx}: routes[{i}]");
                let o = it
                    .as_object()
                    .ok_or_else(|| CniError::msg(code::DECODE, format!("{c} is not an object")))?;
                let dst = field_str(o, "dst", &c)?.ok_or_else(|| {
                    CniError::msg(code::DECODE, format!("{c}: \"dst\" is missing"))
                })?;
                out.routes.push(Route {
                    dst: parse_net(dst, &c)?,
                    gw: field_str(o, "gw", &c)?
                        .map(|g| parse_ip(g, &c))
                        .transpose()?,
                });
            }
        }
        Ok(out)
    }

    /// Print the result in the format of `version` (one of [`SUPPORTED_VERSIONS`]).
    pub fn to_json(&self, version: &str) -> Value {
        let v = Version::parse(version).unwrap_or(Version(1, 1, 0));
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut o = Map::new();
                o.insert("name".into(), i.name.clone().into());
                if !i.mac.is_empty() {
                    o.insert("mac".into(), i.mac.clone().into());
                }
                if v >= Version(1, 1, 0) && i.mtu != 0 {
                    o.insert("mtu".into(), i.mtu.into());
                }
                if !i.sandbox.is_empty() {
                    o.insert("sandbox".into(), i.sandbox.clone().into());
                }
                Value::Object(o)
            })
            .collect();
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut o = Map::new();
                if v.has_ip_version_field() {
                    let fam = if ip.address.addr().is_ipv4() {
                        "4"
                    } else {
                        "6"
                    };
                    o.insert("version".into(), fam.into());
                }
                o.insert("address".into(), ip.address.to_string().into());
                if let Some(g) = ip.gateway {
                    o.insert("gateway".into(), g.to_string().into());
                }
                if let Some(i) = ip.interface {
                    o.insert("interface".into(), i.into());
                }
                Value::Object(o)
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut o = Map::new();
                o.insert("dst".into(), r.dst.to_string().into());
                if let Some(g) = r.gw {
                    o.insert("gw".into(), g.to_string().into());
                }
                Value::Object(o)
            })
            .collect();
        let mut o = Map::new();
        o.insert("cniVersion".into(), version.into());
        if !interfaces.is_empty() {
            o.insert("interfaces".into(), interfaces.into());
        }
        if !ips.is_empty() {
            o.insert("ips".into(), ips.into());
        }
        if !routes.is_empty() {
            o.insert("routes".into(), routes.into());
        }
        o.insert("dns".into(), self.dns.clone());
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_supported("1.1.0").is_ok());
        assert!(check_supported("0.3.1").is_ok());
        assert_eq!(check_supported("0.2.0").map_err(|e| e.code), Err(1));
        assert_eq!(check_supported("2.0.0").map_err(|e| e.code), Err(1));
        assert_eq!(check_supported("x").map_err(|e| e.code), Err(1));
        assert!(Version::parse("0.4.0").is_some_and(Version::supports_check));
        assert!(!Version::parse("0.3.1").is_some_and(Version::supports_check));
        assert!(!Version::parse("1.0.0").is_some_and(Version::supports_gc_status));
    }

    #[test]
    fn roundtrip_per_version() {
        let raw = json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "cali1"}, {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "sandbox": "/run/netns/x"}],
            "ips": [{"version": "4", "address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1},
                    {"version": "6", "address": "fd00::5/64", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}],
            "dns": {"nameservers": ["10.0.0.10"]}
        });
        let out = CniOutput::parse(&raw, "test").unwrap();
        assert_eq!(out.ips.len(), 2);
        assert_eq!(out.to_json("0.4.0"), raw);
        let v1 = out.to_json("1.0.0");
        assert!(v1["ips"][0].get("version").is_none());
        assert_eq!(v1["cniVersion"], "1.0.0");
        let back = CniOutput::parse(&v1, "test").unwrap();
        assert_eq!(back, out);
    }

    #[test]
    fn rejects_bad_address() {
        let raw = json!({"ips": [{"address": "10.1.0.5"}]});
        assert_eq!(
            CniOutput::parse(&raw, "t").map_err(|e| e.code),
            Err(code::DECODE)
        );
        let raw = json!({"ips": [{"address": 5}]});
        assert_eq!(
            CniOutput::parse(&raw, "t").map_err(|e| e.code),
            Err(code::DECODE)
        );
    }
}
