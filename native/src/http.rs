//! The minimal HTTP side of a node's port: what a plain `GET` gets.
//!
//! Requests are parsed with `httparse` (by the listener); this module
//! only decides the response ([`route`]): the browser pages of [`Site`]
//! (see [`crate::www`]), `/aemp-config.json` for same-origin pages, and
//! `aemp node <id>` at `/` when no pages are served.

use crate::www::{self, Site};

/// A parsed HTTP request head (what routing needs of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/index.html`.
    pub path: String,
    /// True if the request asks for a WebSocket upgrade.
    pub websocket: bool,
    /// The `Host` header, if any.
    pub host: Option<String>,
}

/// A response to send before closing the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The full HTTP/1.1 response bytes (`Connection: close`; nothing is
    /// cached, so a rebuilt `web/pkg` is picked up by a reload).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
             Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// `500 Internal Server Error`.
    pub fn internal_error() -> Response {
        Response::text(500, "Internal Server Error", "internal error\n".into())
    }

    fn text(status: u16, reason: &'static str, body: String) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

/// The response for a plain (non-upgrade) request to node `node_id`
/// serving `site`; `local` is the listener address (used for
/// `/aemp-config.json` when the request has no usable `Host`).
///
/// * `/aemp-config.json` → [`www::page_config`] (404 without a web secret);
/// * `/pkg/…` → the wasm-pack output;
/// * anything else → a file below the page directory (`/` → `index.html`;
///   without pages, `/` answers `aemp node <id>`);
/// * unsafe paths and missing files → 404; other methods → 405.
///
/// Reads files: call it off the node thread.
pub fn route(req: &Request, node_id: &str, site: &Site, local: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "Method Not Allowed", "method not allowed\n".into());
    }
    let path = req.path.split(['?', '#']).next().unwrap_or("");
    let not_found = || Response::text(404, "Not Found", "not found\n".into());
    if path == "/aemp-config.json" {
        let Some(secret) = &site.web_secret else {
            return not_found();
        };
        let host = match &req.host {
            Some(h) if www::valid_host(h) => h.as_str(),
            _ => local,
        };
        return Response {
            status: 200,
            reason: "OK",
            content_type: "application/json",
            body: www::page_config(host, secret).to_string().into_bytes(),
        };
    }
    let file = match (path.strip_prefix("/pkg/"), &site.pkg, &site.www) {
        (Some(rest), Some(pkg), _) => {
            www::safe_path(&format!("/{rest}")).and_then(|rel| www::read_file(pkg, &rel))
        }
        (Some(_), None, _) => None,
        (None, _, Some(dir)) => www::safe_path(path).and_then(|rel| www::read_file(dir, &rel)),
        (None, _, None) => None,
    };
    match file {
        Some((body, content_type)) => Response {
            status: 200,
            reason: "OK",
            content_type,
            body,
        },
        None if path == "/" => Response::text(200, "OK", format!("aemp node {node_id}\n")),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            websocket: false,
            host: Some("example.org:4040".into()),
        }
    }

    fn tree() -> (PathBuf, Site) {
        let dir = std::env::temp_dir().join(format!("aemp-http-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www/sub")).unwrap();
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("www/index.html"), "<p>chat</p>").unwrap();
        std::fs::write(dir.join("www/sub/index.html"), "sub").unwrap();
        std::fs::write(dir.join("www/app.js"), "x").unwrap();
        std::fs::write(dir.join("pkg/aemp_web_bg.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.join("secret.txt"), "no").unwrap();
        let site = Site {
            www: Some(dir.join("www")),
            pkg: Some(dir.join("pkg")),
            web_secret: Some("w3b".into()),
        };
        (dir, site)
    }

    #[test]
    fn routes_without_pages() {
        let site = Site::default();
        let r = route(&get("/"), "n1", &site, "1.2.3.4:5");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"aemp node n1\n");
        assert_eq!(route(&get("/?x=1"), "n1", &site, "").status, 200);
        assert_eq!(route(&get("/x"), "n1", &site, "").status, 404);
        assert_eq!(
            route(&get("/aemp-config.json"), "n1", &site, "").status,
            404
        );
        assert_eq!(route(&get("/pkg/x.js"), "n1", &site, "").status, 404);
        let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(bytes.contains("Content-Length: 13\r\n"));
        let head = String::from_utf8(r.to_bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
        let mut post = get("/");
        post.method = "POST".into();
        assert_eq!(route(&post, "n1", &site, "").status, 405);
    }

    #[test]
    fn routes_with_pages() {
        let (dir, site) = tree();
        let r = route(&get("/"), "n1", &site, "");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<p>chat</p>"[..]));
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        let r = route(&get("/sub"), "n1", &site, "");
        assert_eq!(r.body, b"sub");
        let r = route(&get("/app.js?v=1"), "n1", &site, "");
        assert_eq!(r.content_type, "text/javascript; charset=utf-8");
        let r = route(&get("/pkg/aemp_web_bg.wasm"), "n1", &site, "");
        assert_eq!((r.status, r.content_type), (200, "application/wasm"));
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/pkg/../www/app.js",
            "/pkg/%2e%2e/secret.txt",
            "/nope.html",
            "/pkg/",
        ] {
            assert_eq!(route(&get(bad), "n1", &site, "").status, 404, "{bad}");
        }
        let r = route(&get("/aemp-config.json"), "n1", &site, "1.2.3.4:5");
        assert_eq!(r.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seeds": ["ws://example.org:4040/"], "secret": "w3b",
                               "nodeid": "web/%u", "untrusted": true})
        );
        // A missing or strange Host falls back to the listener address.
        let mut q = get("/aemp-config.json");
        q.host = Some("evil\"/x".into());
        let v: serde_json::Value =
            serde_json::from_slice(&route(&q, "n1", &site, "1.2.3.4:5").body).unwrap();
        assert_eq!(v["seeds"][0], "ws://1.2.3.4:5/");
        let _ = std::fs::remove_dir_all(dir);
    }
}
