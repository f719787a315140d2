//! Listeners: bind every configured address, accept, and find out what the
//! peer speaks on the shared port — an AEMP greeting (`aemp;…`), a
//! WebSocket upgrade (AEMP over WebSocket), or a plain HTTP `GET`.
//!
//! The first bytes of an accepted socket are *peeked*, not read, so the
//! chosen handler (the kernel, tungstenite's handshake) sees them all.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use aemp_core::config::addr::expand_wildcard;
use aemp_core::config::Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::driver::Shared;
use crate::http;
use crate::kernel::{Kernel, Transport};
use crate::www::Site;

/// How long an accepted socket may stay silent before we greet it first.
const SILENCE: Duration = Duration::from_millis(300);

/// Largest HTTP request head we look at.
const MAX_HTTP_HEAD: usize = 8192;

/// The machine's interface addresses (for `*` binds); empty on error.
pub fn interface_addrs() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(l) => l.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::warn!("cannot list interface addresses: {e}");
            Vec::new()
        }
    }
}

/// Binds one listener per resolved address of `binds` (`*` hosts expanded
/// over the interface addresses, host names resolved). Fails on the first
/// address that cannot be bound.
pub async fn bind_all(binds: &[Addr]) -> Result<Vec<TcpListener>, String> {
    let addrs = expand_wildcard(binds, &interface_addrs());
    let mut out: Vec<TcpListener> = Vec::new();
    let mut seen: Vec<SocketAddr> = Vec::new();
    for a in &addrs {
        let Addr::Tcp { host, port } = a else {
            return Err(format!("{a}: cannot listen on a URL"));
        };
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("{a}: cannot resolve: {e}"))?
            .collect();
        if resolved.is_empty() {
            return Err(format!("{a}: host has no addresses"));
        }
        for sa in resolved {
            if seen.contains(&sa) {
                continue;
            }
            seen.push(sa);
            let l = TcpListener::bind(sa)
                .await
                .map_err(|e| format!("cannot listen on {sa}: {e}"))?;
            out.push(l);
        }
    }
    Ok(out)
}

/// `host:port` of a socket address, IPv6 bracketed.
pub fn host_port(sa: &SocketAddr) -> String {
    sa.to_string()
}

/// Accepts connections on `l` forever; plain HTTP requests get `site`.
pub(crate) async fn accept_loop<K: Kernel>(sh: Rc<Shared<K>>, l: TcpListener, site: Arc<Site>) {
    let local = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let local: Arc<str> = Arc::from(local);
    loop {
        match l.accept().await {
            Ok((s, peer)) => {
                tokio::task::spawn_local(handle_socket(
                    sh.clone(),
                    s,
                    peer,
                    site.clone(),
                    local.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What an accepted socket speaks.
enum Kind {
    Aemp,
    Http(http::Request, usize),
    Gone,
}

fn is_prefix(b: &[u8], of: &[u8]) -> bool {
    let n = b.len().min(of.len());
    b[..n] == of[..n]
}

/// Peeks until the kind of the connection is known.
///
/// A peer that says nothing for [`SILENCE`] is taken to be an AEMP node
/// waiting for our greeting (AEMP nodes normally send theirs at once, so
/// do HTTP clients).
async fn sniff(s: &TcpStream) -> Kind {
    let mut buf = vec![0u8; MAX_HTTP_HEAD];
    let mut last = 0;
    loop {
        let n = match tokio::time::timeout(SILENCE, s.peek(&mut buf)).await {
            Err(_) if last == 0 => return Kind::Aemp,
            Err(_) => continue, // impossible: peek returns at once with data
            Ok(Ok(0)) | Ok(Err(_)) => return Kind::Gone,
            Ok(Ok(n)) => n,
        };
        let b = &buf[..n];
        let http = is_prefix(b, b"GET ") || is_prefix(b, b"HEAD ");
        if !http {
            return Kind::Aemp;
        }
        if n >= 5 {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(b) {
                Ok(httparse::Status::Complete(len)) => {
                    let websocket = req.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("upgrade")
                            && String::from_utf8_lossy(h.value)
                                .to_ascii_lowercase()
                                .contains("websocket")
                    });
                    return Kind::Http(
                        http::Request {
                            method: req.method.unwrap_or("").to_string(),
                            path: req.path.unwrap_or("").to_string(),
                            websocket,
                            host: req
                                .headers
                                .iter()
                                .find(|h| h.name.eq_ignore_ascii_case("host"))
                                .map(|h| String::from_utf8_lossy(h.value).trim().to_string()),
                        },
                        len,
                    );
                }
                Ok(httparse::Status::Partial) if n < buf.len() => {}
                _ => return Kind::Gone, // malformed or oversized head
            }
        }
        if n == last {
            // Nothing new yet: peek returns at once while data is waiting.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last = n;
    }
}

async fn handle_socket<K: Kernel>(
    sh: Rc<Shared<K>>,
    s: TcpStream,
    peer: SocketAddr,
    site: Arc<Site>,
    local: Arc<str>,
) {
    crate::conn::tune_socket(&s, sh.opts.nodelay);
    let kind = match tokio::time::timeout(sh.opts.handshake_timeout, sniff(&s)).await {
        Ok(k) => k,
        Err(_) => {
            tracing::debug!("{peer}: incomplete HTTP request, closing");
            return;
        }
    };
    match kind {
        Kind::Gone => {}
        Kind::Aemp => {
            let (conn, out) = sh.accepted(Transport::Tcp, Some(peer.to_string()));
            crate::conn::start_tcp(&sh, conn, s, out);
        }
        Kind::Http(req, _) if req.websocket => {
            let r = tokio::time::timeout(
                sh.opts.handshake_timeout,
                tokio_tungstenite::accept_async(s),
            )
            .await;
            match r {
                Ok(Ok(ws)) => {
                    let (conn, out) = sh.accepted(Transport::WebSocket, Some(peer.to_string()));
                    crate::conn::start_ws(&sh, conn, ws, out);
                }
                Ok(Err(e)) => tracing::debug!("{peer}: WebSocket handshake failed: {e}"),
                Err(_) => tracing::debug!("{peer}: WebSocket handshake timed out"),
            }
        }
        Kind::Http(req, len) => {
            let node_id = sh.node.borrow().node_id();
            let head_only = req.method == "HEAD";
            // Files are read off the node thread.
            let resp =
                tokio::task::spawn_blocking(move || http::route(&req, &node_id, &site, &local))
                    .await
                    .unwrap_or_else(|_| http::Response::internal_error());
            let mut s = s;
            let mut head = vec![0u8; len];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let _ = s.write_all(&resp.to_bytes(head_only)).await;
            let _ = s.shutdown().await;
            // Drain briefly so the close is a FIN, not a reset.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        }
    }
}
