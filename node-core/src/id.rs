//! Node IDs, port IDs and port-name generation (spec §1.2–1.5).
//!
//! * A **node ID** is any printable string without `#`; AEMP only compares it.
//! * A **port ID** is `nodeid#portname`; `node_of` is everything before the
//!   first `#`. The node port has the empty name (`nodeid#`, or just `nodeid`).
//! * Local port names are never reused within a node's life: they are a
//!   per-node random prefix (`UNIQ`, 9 random alphanumerics, empty when the
//!   node ID itself was randomised) followed by a counter that counts like
//!   Perl's magic string increment (`b`, `c`, …, `z`, `aa`, …), so they end
//!   in a lower-case letter. Spawned ports use `RUNIQ` (10 random
//!   alphanumerics, the last upper-case) as prefix and share the counter, so
//!   the two kinds can never collide.

use crate::value::Str;
use rand_core::RngCore;

/// The alphabet of random ID parts.
const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The node part of a port ID: everything before the first `#` (the whole
/// string when there is none).
///
/// ```
/// use aemp_core::id::node_of;
/// assert_eq!(node_of("a/b#c#d"), "a/b");
/// assert_eq!(node_of("seedA"), "seedA");
/// ```
#[inline]
pub fn node_of(port: &str) -> &str {
    split_port(port).0
}

/// Splits a port ID into `(node, portname)`; a bare node ID names the node port.
///
/// ```
/// use aemp_core::id::split_port;
/// assert_eq!(split_port("n#p"), ("n", "p"));
/// assert_eq!(split_port("n"), ("n", ""));
/// ```
#[inline]
pub fn split_port(port: &str) -> (&str, &str) {
    // A byte search ('#' is ASCII, so the split is at a char boundary).
    match port.bytes().position(|b| b == b'#') {
        Some(i) => (&port[..i], &port[i + 1..]),
        None => (port, ""),
    }
}

/// Checks that a string may be used as a remote node ID: not empty, no `#`,
/// no control characters (they would break greeting lines).
pub fn validate_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the empty string is not a valid node ID".into());
    }
    if id.contains('#') {
        return Err(format!("node ID '{id}' contains '#'"));
    }
    if id.chars().any(|c| c.is_control() || c == ';') {
        return Err(format!(
            "node ID '{id}' contains a control character or ';'"
        ));
    }
    Ok(())
}

/// `n` random alphanumeric characters.
pub fn random_alnum(rng: &mut dyn RngCore, n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[(rng.next_u32() % ALNUM.len() as u32) as usize] as char)
        .collect()
}

/// A fresh `RUNIQ`: 10 random alphanumerics, the last one upper-case.
pub fn random_runiq(rng: &mut dyn RngCore) -> String {
    let mut s = random_alnum(rng, 9);
    s.push((b'A' + (rng.next_u32() % 26) as u8) as char);
    s
}

/// Expands a node-ID template (spec §1.2): `%n` becomes `hostname`; every
/// `%u`, and an empty tail directly after a trailing `/`, becomes `runiq`.
/// Returns the ID and whether a random part was substituted (then local port
/// names need no extra prefix).
///
/// ```
/// use aemp_core::id::expand_node_id;
/// assert_eq!(expand_node_id("aemp/%n/%u", "cerebro", "ZQDGSIkRhE"), ("aemp/cerebro/ZQDGSIkRhE".into(), true));
/// assert_eq!(expand_node_id("web/", "h", "R"), ("web/R".into(), true));
/// assert_eq!(expand_node_id("seedA", "h", "R"), ("seedA".into(), false));
/// ```
pub fn expand_node_id(template: &str, hostname: &str, runiq: &str) -> (String, bool) {
    let mut id = template.replace("%n", hostname);
    let mut randomised = false;
    if id.contains("%u") {
        id = id.replace("%u", runiq);
        randomised = true;
    }
    if id.ends_with('/') {
        id.push_str(runiq);
        randomised = true;
    }
    (id, randomised)
}

/// Perl's magic string increment for a string of lower-case letters:
/// `a`→`b`, `z`→`aa`, `az`→`ba`.
fn magic_increment(s: &mut Vec<u8>) {
    for i in (0..s.len()).rev() {
        if s[i] == b'z' {
            s[i] = b'a';
        } else {
            s[i] += 1;
            return;
        }
    }
    s.insert(0, b'a');
}

/// Generates port names that are never reused within a node's life.
#[derive(Debug, Clone)]
pub struct PortNames {
    uniq: String,
    runiq: String,
    counter: Vec<u8>,
}

impl PortNames {
    /// A generator with the given prefixes (`uniq` for local ports, `runiq`
    /// for spawned ones). The counter starts at `a`, so the first name ends in `b`.
    pub fn new(uniq: impl Into<String>, runiq: impl Into<String>) -> Self {
        PortNames {
            uniq: uniq.into(),
            runiq: runiq.into(),
            counter: vec![b'a'],
        }
    }

    /// A generator with fresh random prefixes.
    pub fn random(rng: &mut dyn RngCore) -> Self {
        Self::new(random_alnum(rng, 9), random_runiq(rng))
    }

    /// Sets the local prefix (empty when the node ID is already unique).
    pub fn set_uniq(&mut self, uniq: impl Into<String>) {
        self.uniq = uniq.into();
    }

    /// Sets the spawned-port prefix.
    pub fn set_runiq(&mut self, runiq: impl Into<String>) {
        self.runiq = runiq.into();
    }

    /// The spawned-port prefix (also used for randomised node IDs).
    pub fn runiq(&self) -> &str {
        &self.runiq
    }

    fn next(&mut self, prefix_runiq: bool) -> Str {
        magic_increment(&mut self.counter);
        let prefix = if prefix_runiq {
            &self.runiq
        } else {
            &self.uniq
        };
        let mut s = String::with_capacity(prefix.len() + self.counter.len());
        s.push_str(prefix);
        s.push_str(std::str::from_utf8(&self.counter).expect("ascii"));
        Str::from(s)
    }

    /// The next local port name.
    ///
    /// ```
    /// use aemp_core::id::PortNames;
    /// let mut n = PortNames::new("", "XyZ");
    /// assert_eq!(n.next_local(), "b");
    /// assert_eq!(n.next_spawned(), "XyZc");
    /// ```
    pub fn next_local(&mut self) -> Str {
        self.next(false)
    }

    /// The next spawned port name.
    pub fn next_spawned(&mut self) -> Str {
        self.next(true)
    }

    /// The next request id for global requests (`b`, `c`, …; shares nothing
    /// with port names).
    pub fn next_counter(counter: &mut Vec<u8>) -> Str {
        magic_increment(counter);
        Str::from(std::str::from_utf8(counter).expect("ascii"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn magic_increment_matches_perl() {
        let mut s = b"a".to_vec();
        let mut seen = vec![];
        for _ in 0..30 {
            magic_increment(&mut s);
            seen.push(String::from_utf8(s.clone()).unwrap());
        }
        assert_eq!(seen[0], "b");
        assert_eq!(seen[24], "z");
        assert_eq!(seen[25], "aa");
        assert_eq!(seen[26], "ab");
        let mut s = b"zz".to_vec();
        magic_increment(&mut s);
        assert_eq!(s, b"aaa");
    }

    #[test]
    fn names_never_repeat_and_kinds_never_collide() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut g = PortNames::random(&mut rng);
        let mut seen = HashSet::new();
        for i in 0..20000 {
            let n = if i % 3 == 0 {
                g.next_spawned()
            } else {
                g.next_local()
            };
            assert!(seen.insert(n.clone()), "{n} repeated");
            assert!(n.ends_with(|c: char| c.is_ascii_lowercase()));
        }
        assert!(g.runiq().ends_with(|c: char| c.is_ascii_uppercase()));
    }

    #[test]
    fn node_id_validation() {
        assert!(validate_node_id("aemp/host/Xy").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id("a#b").is_err());
        assert!(validate_node_id("a\nb").is_err());
    }

    #[test]
    fn template_expansion() {
        assert_eq!(expand_node_id("%n/%n", "h", "R"), ("h/h".into(), false));
        assert_eq!(expand_node_id("x/%u/%u", "h", "R"), ("x/R/R".into(), true));
        assert_eq!(expand_node_id("prof/", "h", "R"), ("prof/R".into(), true));
    }
}
