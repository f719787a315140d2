//! Errors returned by kernel API calls (the Rust counterpart of Perl's croaks).

use std::fmt;

/// A kernel API call was used wrongly. Network failures are never reported
/// here: they arrive as kill reasons through monitors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `rcv` (or another local-only call) on a port of another node.
    NotLocal(String),
    /// `kil` on a node port.
    NodePort(String),
    /// `spawn`/`snd_to_func` with a function name that lacks `::`.
    BadFunctionName(String),
    /// A call that needs the current port (`$SELF`) outside port context.
    NoSelf(&'static str),
    /// A port or node ID that cannot be used (e.g. an empty node part).
    BadId(String),
    /// Configuration was wrong.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLocal(p) => write!(f, "{p}: rcv can only be called on local ports"),
            Error::NodePort(p) => write!(f, "{p}: killing a node port is not allowed"),
            Error::BadFunctionName(n) => {
                write!(
                    f,
                    "{n}: function name must be fully qualified (contain '::')"
                )
            }
            Error::NoSelf(what) => {
                write!(f, "{what} can only be called from within a port context")
            }
            Error::BadId(s) => write!(f, "{s}"),
            Error::Config(s) => write!(f, "configuration error: {s}"),
        }
    }
}

impl std::error::Error for Error {}
