//! Errors of the testbed library.

use std::path::PathBuf;

/// Everything that can go wrong while loading a topology or running a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The topology (or its Wren labels) is invalid; the message names the key.
    #[error("{file}: {msg}")]
    Topology {
        /// Topology file (or `<inline>`).
        file: String,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// A command failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Exit status description.
        status: String,
        /// Its standard error (trimmed).
        stderr: String,
    },
    /// A program could not be started at all.
    #[error("cannot start `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A query returned output we could not parse.
    #[error("{what}: cannot parse output: {msg}")]
    Parse {
        /// Which query.
        what: String,
        /// Details.
        msg: String,
    },
    /// A deadline passed while waiting for a condition.
    #[error("timed out after {secs:.1} s waiting for {what}{}", last.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        /// What was awaited.
        what: String,
        /// Seconds waited.
        secs: f64,
        /// The last error the probe returned, if any.
        last: Option<String>,
    },
    /// A lab name, node name or pod name is unknown.
    #[error("{0}")]
    NotFound(String),
    /// Wrong usage, with the fix in the message.
    #[error("{0}")]
    Usage(String),
    /// A CNI plugin returned an error.
    #[error("CNI {command} for pod {pod} with plugin {plugin}: {msg}")]
    Cni {
        /// ADD, DEL, ...
        command: String,
        /// Pod name.
        pod: String,
        /// Plugin type.
        plugin: String,
        /// Error message from the plugin (its error JSON `msg`/`details` or stderr).
        msg: String,
    },
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn topo(file: &str, msg: impl Into<String>) -> Self {
        Error::Topology {
            file: file.to_string(),
            msg: msg.into(),
        }
    }
}
