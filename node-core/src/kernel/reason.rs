//! Kill reasons: why a port died (spec §2.11).
//!
//! A reason is a list of values. The empty list is a *normal* kill; anything
//! else is an error kill whose first element names the kind:
//! `die`, `transport_error`, `no_such_port`, `unhandled_message`, or a
//! user-defined tag.

use crate::value::{Msg, Value};
use std::fmt;

/// Why a port died. Empty = normal.
///
/// ```
/// use aemp_core::Reason;
/// let r = Reason::die("boom");
/// assert_eq!(r.kind(), Some("die"));
/// assert!(!r.is_normal());
/// assert!(Reason::normal().is_normal());
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Reason(pub Msg);

impl Reason {
    /// A normal kill (no reason).
    pub fn normal() -> Reason {
        Reason(Vec::new())
    }

    /// `die => message`: a callback failed.
    pub fn die(message: impl Into<String>) -> Reason {
        let mut m: String = message.into();
        while m.ends_with('\n') {
            m.pop();
        }
        Reason(vec![Value::from("die"), Value::from(m)])
    }

    /// `transport_error => nodeid, message`: a connection failed or was lost.
    pub fn transport_error(node: &str, message: impl Into<String>) -> Reason {
        Reason(vec![
            Value::from("transport_error"),
            Value::from(node),
            Value::from(message.into()),
        ])
    }

    /// `no_such_port => "cannot monitor nonexistent port", port`.
    pub fn no_such_port(port: &str) -> Reason {
        Reason(vec![
            Value::from("no_such_port"),
            Value::from("cannot monitor nonexistent port"),
            Value::from(port),
        ])
    }

    /// `unhandled_message => "no callback found for message '<tag>'"`.
    pub fn unhandled_message(first: Option<&Value>) -> Reason {
        let tag = first.map(Value::tag_preview).unwrap_or_default();
        Reason(vec![
            Value::from("unhandled_message"),
            Value::from(format!("no callback found for message '{tag}'")),
        ])
    }

    /// True for a normal kill.
    pub fn is_normal(&self) -> bool {
        self.0.is_empty()
    }

    /// The kind (first element as a string), if any.
    pub fn kind(&self) -> Option<&str> {
        self.0.first().and_then(Value::as_str)
    }

    /// The reason values.
    pub fn values(&self) -> &[Value] {
        &self.0
    }
}

impl From<Msg> for Reason {
    fn from(m: Msg) -> Self {
        Reason(m)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("normal");
        }
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(if i == 1 { " => " } else { ", " })?;
            }
            match v.as_str() {
                Some(s) => f.write_str(s)?,
                None => write!(f, "{v}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn die_strips_trailing_newlines() {
        assert_eq!(Reason::die("x\n\n").0[1], Value::from("x"));
    }

    #[test]
    fn display() {
        assert_eq!(Reason::normal().to_string(), "normal");
        assert_eq!(
            Reason::transport_error("n", "connect timeout").to_string(),
            "transport_error => n, connect timeout"
        );
    }

    #[test]
    fn unhandled_previews_tag() {
        let r = Reason::unhandled_message(Some(&Value::from("hi\u{7}")));
        assert_eq!(r.0[1], Value::from("no callback found for message 'hi.'"));
    }
}
