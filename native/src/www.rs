//! The browser pages a node serves on its listening port (`www/`, the
//! wasm-pack build of `web/` under `/pkg/`, and `/aemp-config.json`, what a
//! same-origin page needs to join as an untrusted node).
//!
//! Files are read from the source tree at run time: `www/` and `web/pkg/`
//! of the workspace this binary was built from (found through
//! `CARGO_MANIFEST_DIR` at compile time), or from the directory named by
//! the configuration key `www_root` (its `pkg/` subdirectory, if present,
//! holds the wasm-pack output; else the workspace's `web/pkg/` is used, or
//! the key `www_pkg`). A false `www_root` (`""`, `0`) serves no pages.

use std::path::{Path, PathBuf};

use aemp_core::config::{perl_truthy, Config};
use serde_json::Value as Json;

/// Where the pages come from, and the web secret handed to them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Site {
    /// The pages (`/` → `index.html`); `None` serves no files.
    pub www: Option<PathBuf>,
    /// The wasm-pack `--target web` output, served under `/pkg/`.
    pub pkg: Option<PathBuf>,
    /// The web secret (config `web_secret`): given to same-origin pages in
    /// `/aemp-config.json`. `None`: no such file, pages cannot join.
    pub web_secret: Option<String>,
}

/// The workspace this binary was built from.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default page directory: the workspace's `www/`.
pub fn default_www() -> PathBuf {
    workspace().join("www")
}

/// The default wasm-pack output: the workspace's `web/pkg/`.
pub fn default_pkg() -> PathBuf {
    workspace().join("web").join("pkg")
}

fn path_key(cfg: &Config, key: &str) -> Option<Option<PathBuf>> {
    match cfg.get(key)? {
        Json::String(s) if !s.is_empty() => Some(Some(PathBuf::from(s))),
        v if perl_truthy(v) => Some(Some(PathBuf::from(v.to_string()))),
        _ => Some(None),
    }
}

impl Site {
    /// The site of a node's configuration (`www_root`, `www_pkg`,
    /// `web_secret`).
    pub fn from_config(cfg: &Config) -> Site {
        let www = path_key(cfg, "www_root").unwrap_or_else(|| Some(default_www()));
        let pkg = match path_key(cfg, "www_pkg") {
            Some(p) => p,
            None => match &www {
                Some(w) if w.join("pkg").is_dir() => Some(w.join("pkg")),
                Some(_) => Some(default_pkg()),
                None => None,
            },
        };
        let web_secret = cfg
            .get("web_secret")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Site {
            www,
            pkg,
            web_secret,
        }
    }
}

/// The `Content-Type` for a file name.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "ts" => "text/plain; charset=utf-8",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one path segment; `None` if malformed or not UTF-8.
fn decode(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = hex(*b.get(i + 1)?)?;
            let l = hex(*b.get(i + 2)?)?;
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The safe relative file path for a request path (without query): every
/// segment percent-decoded; `None` for anything that could leave the root
/// (`..`, `.`, hidden names, backslashes, NUL, empty segments inside the
/// path). A trailing `/` names the directory's `index.html`.
pub fn safe_path(path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix('/')?;
    let mut out = PathBuf::new();
    let mut segs = rest.split('/').peekable();
    while let Some(raw) = segs.next() {
        let last = segs.peek().is_none();
        if raw.is_empty() {
            if last {
                out.push("index.html");
                return Some(out);
            }
            return None;
        }
        let seg = decode(raw)?;
        if seg.is_empty()
            || seg.starts_with('.')
            || seg.contains(['/', '\\', '\0', ':'])
            || seg.chars().any(char::is_control)
        {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// A host header value that is safe to put into a URL: host name, IPv4,
/// `[IPv6]`, optional port.
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c))
}

/// What `/aemp-config.json` says: join through this seed's WebSocket (at
/// the host the page was loaded from), authenticate with the web secret,
/// as an untrusted `web/%u` node.
pub fn page_config(host: &str, web_secret: &str) -> Json {
    serde_json::json!({
        "seeds": [format!("ws://{host}/")],
        "secret": web_secret,
        "nodeid": "web/%u",
        "untrusted": true,
    })
}

/// Reads a file below `root` (which must be a regular file).
pub fn read_file(root: &Path, rel: &Path) -> Option<(Vec<u8>, &'static str)> {
    let mut p = root.join(rel);
    if p.is_dir() {
        p.push("index.html");
    }
    let meta = std::fs::metadata(&p).ok()?;
    if !meta.is_file() {
        return None;
    }
    let body = std::fs::read(&p).ok()?;
    let name = p.file_name()?.to_string_lossy().into_owned();
    Some((body, content_type(&name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(safe_path("/"), Some(PathBuf::from("index.html")));
        assert_eq!(safe_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(safe_path("/a/"), Some(PathBuf::from("a/index.html")));
        assert_eq!(safe_path("/a%20b"), Some(PathBuf::from("a b")));
        for bad in [
            "",
            "a",
            "/..",
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/a//b",
            "/.git/config",
            "/a%5c..%5cb",
            "/a%00",
            "/%",
            "/%zz",
            "/%ff",
            "/C:",
            "//etc/passwd",
        ] {
            assert_eq!(safe_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn types_and_hosts() {
        assert_eq!(content_type("aemp_web_bg.wasm"), "application/wasm");
        assert_eq!(content_type("x.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert!(valid_host("127.0.0.1:4040"));
        assert!(valid_host("[::1]:4040"));
        assert!(valid_host("example.org"));
        assert!(!valid_host("a\"b"));
        assert!(!valid_host("a/b"));
        assert!(!valid_host(""));
    }

    #[test]
    fn config() {
        let mut m = aemp_core::config::JsonMap::new();
        m.insert("web_secret".into(), "w".into());
        let s = Site::from_config(&Config::new("p", m.clone()));
        assert_eq!(s.www, Some(default_www()));
        assert_eq!(s.web_secret.as_deref(), Some("w"));
        m.insert("www_root".into(), "".into());
        m.insert("web_secret".into(), "".into());
        let s = Site::from_config(&Config::new("p", m));
        assert_eq!(s, Site::default());
        let c = page_config("h:1", "w");
        assert_eq!(c["seeds"][0], "ws://h:1/");
        assert_eq!(c["untrusted"], true);
    }
}
