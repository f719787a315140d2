//! Configuration: `configure` arguments, the rc file, profiles and addresses (spec §3).
