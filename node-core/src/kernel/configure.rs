//! `configure`: turning an effective configuration into a running node
//! identity (spec §3.1 steps 3–4; listeners, seeds and services are the
//! driver's and the connection layer's part).

use super::conn::NetConfig;
use super::{Error, Node};
use crate::config::{Config, ConfigError};
use crate::wire::{Framing, HandshakeConfig};

fn cfg_err(e: ConfigError) -> Error {
    Error::Config(e.to_string())
}

/// The network settings of a configuration.
fn net_config(cfg: &Config, node_id: &str) -> Result<NetConfig, Error> {
    let secret = cfg.secret().map_err(cfg_err)?;
    let mut hs = HandshakeConfig::new(node_id, secret.as_deref().map(str::as_bytes));
    hs.auth_offer = cfg.auth_offer().map_err(cfg_err)?;
    hs.auth_accept = cfg.auth_accept().map_err(cfg_err)?;
    hs.framings = cfg
        .framing_format_supported(&["cbor", "json"])
        .map_err(cfg_err)?
        .iter()
        .filter_map(|f| Framing::from_name(f))
        .collect();
    if hs.framings.is_empty() {
        return Err(Error::Config(
            "framing_format names no framing this node supports (cbor, json)".into(),
        ));
    }
    // Extension: a separate secret for untrusted (browser) nodes.
    hs.web_secret = cfg
        .get("web_secret")
        .and_then(|v| v.as_str())
        .map(|s| s.as_bytes().to_vec());
    if cfg.get("untrusted").is_some_and(crate::config::perl_truthy) {
        if !crate::kernel::trust::is_untrusted_id(node_id) {
            return Err(Error::Config(format!(
                "an untrusted node needs a node ID starting with '{}' (got '{node_id}')",
                crate::kernel::trust::UNTRUSTED_PREFIX
            )));
        }
        hs.extra.push(("untrusted".into(), "1".into()));
    }
    // TLS (spec §5.3): the PEM is our certificate and our CA set.
    let tls = match cfg.cert().map_err(cfg_err)? {
        Some(pem) => Some(std::sync::Arc::new(
            super::tls::TlsContext::from_pem(&pem).map_err(Error::Config)?,
        )),
        None => None,
    };
    hs.has_cert = tls.is_some();
    let heartbeat_interval = cfg.heartbeat_interval().map_err(cfg_err)?;
    // Extension: tell the peer we send heartbeats (Perl ignores the key).
    hs.extra
        .push(("hb".into(), format!("{}", heartbeat_interval.as_secs_f64())));
    Ok(NetConfig {
        hs,
        monitor_timeout: cfg.monitor_timeout().map_err(cfg_err)?,
        connect_interval: cfg.connect_interval().map_err(cfg_err)?,
        heartbeat_interval,
        heartbeat_timeout: cfg.heartbeat_timeout().map_err(cfg_err)?,
        max_packet: cfg.max_packet().map_err(cfg_err)?,
        max_queue: cfg.max_queue().map_err(cfg_err)?,
        tls,
    })
}

impl Node {
    /// Applies an effective configuration (see [`crate::config::effective_config`]):
    /// computes and sets the node ID from the `nodeid` template (`%n` =
    /// `hostname`, `%u` and a trailing `/` = a random part), and secure mode.
    ///
    /// Like Perl's, a node is configured once: a second call changes nothing
    /// and returns `Ok(false)`.
    ///
    /// ```
    /// use aemp_core::{config::{effective_config, JsonMap}, Node};
    /// let mut args = JsonMap::new();
    /// args.insert("nodeid".into(), "web/%n/%u".into());
    /// let cfg = effective_config(Some("demo"), &args, None, "host1").unwrap();
    /// let mut node = Node::new([5; 32]);
    /// assert!(node.configure(&cfg, "host1").unwrap());
    /// assert!(node.node_id().starts_with("web/host1/"));
    /// assert!(!node.configure(&cfg, "host1").unwrap());
    /// ```
    pub fn configure(&mut self, cfg: &Config, hostname: &str) -> Result<bool, Error> {
        if self.is_configured() {
            tracing::info!("configure called a second time, ignored");
            return Ok(false);
        }
        let runiq = self.runiq().to_string();
        let (id, randomised) = cfg
            .node_id(hostname, &runiq)
            .map_err(|e| Error::Config(e.to_string()))?;
        let net = net_config(cfg, &id)?;
        let seeds = cfg.seeds(hostname).map_err(cfg_err)?;
        self.set_node_id(&id, randomised)?;
        self.set_secure(cfg.secure());
        self.untrusted_self = cfg.get("untrusted").is_some_and(crate::config::perl_truthy);
        self.net = Some(net);
        // Global service requested as a service (Perl: "AnyEvent::MP::Global::").
        let wants_global = cfg.services().map_err(cfg_err)?.iter().any(|s| {
            matches!(s, crate::config::Service::Module(m) if m.trim_end_matches("::") == "AnyEvent::MP::Global")
        });
        if wants_global {
            self.become_global();
        }
        // Publish our listeners (none yet; the driver reports them).
        let me = self.id.clone();
        self.db_set("'l", &me, crate::value::Value::Array(Vec::new()))
            .forget();
        self.set_seeds(seeds.iter().map(ToString::to_string).collect());
        tracing::info!("configured node {id}");
        Ok(true)
    }

    /// Tells the node the addresses its listeners are bound to (`host:port`,
    /// ephemeral ports resolved). Drivers call it after binding, before the
    /// first poll. A seed address among them is this node itself.
    pub fn set_listeners(&mut self, addrs: Vec<String>) {
        self.listeners = addrs;
        if self.is_configured() {
            let me = self.id.clone();
            let l = crate::value::Value::Array(
                self.listeners
                    .iter()
                    .map(crate::value::Value::from)
                    .collect(),
            );
            self.db_set("'l", &me, l).forget();
        }
    }

    /// The listener addresses set with [`Node::set_listeners`].
    pub fn listeners(&self) -> &[String] {
        &self.listeners
    }

    /// True once [`Node::configure`] succeeded.
    pub fn is_configured(&self) -> bool {
        self.net.is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{effective_config, JsonMap, RcFile};
    use crate::Node;

    #[test]
    fn default_node_id_is_profile_slash_random() {
        let cfg = effective_config(None, &JsonMap::new(), None, "myhost").unwrap();
        let mut n = Node::new([1; 32]);
        n.configure(&cfg, "myhost").unwrap();
        let id = n.node_id().to_string();
        assert!(
            id.starts_with("myhost/") && id.len() == "myhost/".len() + 10,
            "{id}"
        );
        // Randomised ID: local port names need no prefix.
        let p = n.port();
        assert_eq!(p, format!("{id}#b"));
    }

    #[test]
    fn fixed_node_id_and_secure_from_rc_profile() {
        let rc =
            RcFile::parse(r#"{"profile": {"seed": {"nodeid": "seedA", "secure": 1}}}"#).unwrap();
        let cfg = effective_config(Some("seed"), &JsonMap::new(), Some(&rc), "h").unwrap();
        let mut n = Node::new([1; 32]);
        n.configure(&cfg, "h").unwrap();
        assert_eq!(n.node_id(), "seedA");
        assert!(n.is_secure());
        // Fixed ID: port names carry the random prefix.
        assert!(n.port().len() > "seedA#b".len());
    }

    #[test]
    fn bad_node_id_is_an_error() {
        let mut args = JsonMap::new();
        args.insert("nodeid".into(), "a#b".into());
        let cfg = effective_config(None, &args, None, "h");
        let refused = match cfg {
            Err(_) => true,
            Ok(c) => Node::new([1; 32]).configure(&c, "h").is_err(),
        };
        assert!(refused);
    }
}
