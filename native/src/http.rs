//! The minimal HTTP side of a node's port: what a plain `GET` gets.
//!
//! Requests are parsed with `httparse` (by the listener); this module
//! only decides the response. Routing lives in [`route`] so that serving
//! the browser pages (`www/`) later is a change here only.

/// A parsed HTTP request head (what routing needs of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/index.html`.
    pub path: String,
    /// True if the request asks for a WebSocket upgrade.
    pub websocket: bool,
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
    /// The full HTTP/1.1 response bytes (`Connection: close`).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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

    fn text(status: u16, reason: &'static str, body: String) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

/// The response for a plain (non-upgrade) request to node `node_id`:
/// `/` → `200 aemp node <id>`, anything else → 404.
pub fn route(req: &Request, node_id: &str) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "Method Not Allowed", "method not allowed\n".into());
    }
    let path = req.path.split(['?', '#']).next().unwrap_or("");
    match path {
        "/" => Response::text(200, "OK", format!("aemp node {node_id}\n")),
        _ => Response::text(404, "Not Found", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            websocket: false,
        }
    }

    #[test]
    fn routes() {
        let r = route(&get("/"), "n1");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"aemp node n1\n");
        assert_eq!(route(&get("/?x=1"), "n1").status, 200);
        assert_eq!(route(&get("/x"), "n1").status, 404);
        let bytes = String::from_utf8(r.to_bytes(false)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(bytes.contains("Content-Length: 13\r\n"));
    }
}
