//! CNI error type: every failure the plugin reports maps to a spec error code.

use std::fmt;

/// Error codes from the CNI specification (1.1.0, "Error" section) and Wren's own
/// plugin-specific codes (the spec reserves 100 and above for plugins).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (no cleanup needed).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later.
    pub const TRY_AGAIN: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, existing containers may have limited connectivity.
    pub const NOT_AVAILABLE_LIMITED: u32 = 51;
    /// Wren: the container network namespace is missing or was replaced during the call.
    pub const NETNS: u32 = 100;
    /// Wren: a netlink request failed.
    pub const NETLINK: u32 = 101;
    /// Wren: the delegated IPAM plugin failed without a CNI error of its own.
    pub const IPAM: u32 = 102;
    /// Wren: the agent's node file is missing or malformed.
    pub const NODE_FILE: u32 = 103;
    /// Wren: CHECK found the attachment different from the previous result.
    pub const CHECK_FAILED: u32 = 104;
    /// Wren: the interface to create already exists.
    pub const EXISTS: u32 = 105;
}

/// A CNI error: printed as the spec's JSON object on stdout with a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// Spec or plugin error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer explanation (may be empty).
    pub details: String,
}

impl CniError {
    /// A new error with `code`, `msg` and `details`.
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Shorthand for an error without details.
    pub fn msg(code: u32, msg: impl Into<String>) -> Self {
        Self::new(code, msg, "")
    }

    /// The error as spec JSON for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("cniVersion".into(), cni_version.into());
        obj.insert("code".into(), self.code.into());
        obj.insert("msg".into(), self.msg.clone().into());
        if !self.details.is_empty() {
            obj.insert("details".into(), self.details.clone().into());
        }
        serde_json::Value::Object(obj)
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CNI error {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

impl From<rtnetlink::Error> for CniError {
    fn from(e: rtnetlink::Error) -> Self {
        CniError::new(code::NETLINK, "netlink request failed", e.to_string())
    }
}

/// Result alias used across the plugin.
pub type CniResult<T> = Result<T, CniError>;

/// The errno of a netlink error, if it is one.
pub fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}
