//! The byte-level AEMP transport protocol: greeting, authentication, framing (spec §5).

pub mod framing;
