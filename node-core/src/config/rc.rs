//! The rc file (spec §3.5): parsing, profile resolution and the editing API
//! behind the `aemp` configuration commands (spec §10.3–10.4).
//!
//! The file is one JSON object: the global default configuration, plus
//! `"version": 1` and `"profile": { name: { …keys…, "parent": "other" } }`.
//!
//! # Reading
//!
//! The driver finds the file (`$PERL_ANYEVENT_MP_RC`, else
//! `$HOME/.perl-anyevent-mp`, else `$APPDATA/perl-anyevent-mp`), reads it and
//! passes the text to [`RcFile::parse`]. Perl reads it with a relaxed JSON
//! parser; we emulate that with a small pre-pass ([`strip_relaxed`]) that
//! removes `#` comments (to end of line, outside strings) and a single
//! trailing comma before `]` or `}`, and then hand the result to
//! `serde_json`. Strings are tracked (with `\"` and `\\` escapes), so `#` and
//! `,` inside strings are untouched. Errors keep their line and column.
//!
//! Perl falls back to `{"version":1}` for a missing or unparsable file; a
//! node may do the same with [`RcFile::parse_or_default`], but the CLI should
//! use [`RcFile::parse`] and refuse to save over a file whose text it could
//! not read ([`ConfigError::is_rc_unreadable`]). For a missing file use
//! [`RcFile::empty`].
//!
//! # Writing
//!
//! [`RcFile::to_pretty_json`] gives plain pretty JSON (which Perl reads).
//! Writing is the driver's job; Perl's sequence, which the driver should
//! follow: write the text to `<file>~new~`, hard-link the old file to
//! `<file>~` (the backup; ignore failure if there was no old file), then
//! atomically rename `<file>~new~` to `<file>`.
//!
//! # Editing
//!
//! Commands act on a [`Target`]: the global defaults or a named profile
//! (created on demand, like `aemp profile <name>`). A `del…` command removes
//! the key from that level so it is inherited again.
//!
//! ```
//! use aemp_core::config::{RcFile, Target};
//! use serde_json::json;
//! let mut rc = RcFile::empty();
//! let seed = Target::profile("seed");
//! rc.set_list(&seed, "binds", &json!("*:4040")).unwrap();
//! rc.add_unique(&Target::Global, "seeds", json!("host1:4040")).unwrap();
//! rc.set_parent("doomed", "seed").unwrap();
//! assert_eq!(rc.resolve(Some("doomed")).unwrap()["binds"], json!(["*:4040"]));
//! let text = rc.to_pretty_json();
//! assert_eq!(RcFile::parse(&text).unwrap(), rc);
//! ```

use super::{perl_split_comma, scalar_string, ConfigError, JsonMap};
use serde_json::Value;

/// Which level of the rc file a configuration command edits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The global default configuration (top level of the file).
    Global,
    /// A named profile (`profile.<name>`).
    Profile(String),
}

impl Target {
    /// `Target::Profile(name)`.
    pub fn profile(name: impl Into<String>) -> Self {
        Target::Profile(name.into())
    }
}

/// Removes what Perl's relaxed JSON parser tolerates and `serde_json` does
/// not: `#` comments to end of line (outside strings; the newline is kept
/// so error positions stay right) and one trailing comma directly (modulo
/// whitespace and comments) before `]` or `}` (replaced by a space).
///
/// ```
/// use aemp_core::config::rc::strip_relaxed;
/// let t = strip_relaxed("{\"a#b\": [1, 2,], # note, \"x\"\n}");
/// assert_eq!(serde_json::from_str::<serde_json::Value>(&t).unwrap(),
///            serde_json::json!({"a#b": [1, 2]}));
/// ```
pub fn strip_relaxed(text: &str) -> String {
    // Pass 1: comments.
    let mut no_comments = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut in_comment = false;
    for c in text.chars() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
                no_comments.push(c);
            }
            continue;
        }
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            in_comment = true;
            continue;
        }
        no_comments.push(c);
    }
    // Pass 2: trailing commas.
    let chars: Vec<char> = no_comments.chars().collect();
    let mut out = String::with_capacity(no_comments.len());
    let (mut in_str, mut escaped) = (false, false);
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some(']') | Some('}')) {
                out.push(' ');
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// A parsed rc file. Keys are kept as they are (unknown keys included);
/// serialisation sorts them.
#[derive(Clone, Debug, PartialEq)]
pub struct RcFile {
    root: JsonMap,
}

impl Default for RcFile {
    fn default() -> Self {
        Self::empty()
    }
}

impl RcFile {
    /// The configuration of a missing file: `{"version": 1}`.
    pub fn empty() -> Self {
        let mut root = JsonMap::new();
        root.insert("version".into(), 1.into());
        RcFile { root }
    }

    /// Parses rc text (relaxed JSON, see the [module docs](self)).
    ///
    /// Errors: [`ConfigError::RcEmpty`] for empty text (or only comments),
    /// [`ConfigError::RcSyntax`] for invalid JSON, [`ConfigError::RcShape`]
    /// when the top level is not an object, `profile` is not an object of
    /// objects, or a `parent` is not a string.
    ///
    /// ```
    /// use aemp_core::config::{RcFile, ConfigError};
    /// assert_eq!(RcFile::parse("  \n"), Err(ConfigError::RcEmpty));
    /// assert!(RcFile::parse("{ oops").unwrap_err().is_rc_unreadable());
    /// let rc = RcFile::parse("{\"version\":1, # me\n \"secret\":\"a#b\",}").unwrap();
    /// assert_eq!(rc.global()["secret"], "a#b");
    /// ```
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let stripped = strip_relaxed(text);
        if stripped.trim().is_empty() {
            return Err(ConfigError::RcEmpty);
        }
        let v: Value = serde_json::from_str(&stripped).map_err(|e| ConfigError::RcSyntax {
            line: e.line(),
            column: e.column(),
            msg: e.to_string(),
        })?;
        let Value::Object(root) = v else {
            return Err(ConfigError::RcShape(
                "top level is not a JSON object".into(),
            ));
        };
        Self::from_map(root)
    }

    /// Wraps an already parsed JSON object, checking its shape like
    /// [`RcFile::parse`].
    pub fn from_map(root: JsonMap) -> Result<Self, ConfigError> {
        match root.get("profile") {
            None | Some(Value::Null) => {}
            Some(Value::Object(profiles)) => {
                for (name, p) in profiles {
                    let Value::Object(p) = p else {
                        return Err(ConfigError::RcShape(format!(
                            "profile '{name}' is not an object"
                        )));
                    };
                    match p.get("parent") {
                        None | Some(Value::Null) | Some(Value::String(_)) => {}
                        Some(other) => {
                            return Err(ConfigError::RcShape(format!(
                                "profile '{name}': parent {other} is not a string"
                            )))
                        }
                    }
                }
            }
            Some(_) => return Err(ConfigError::RcShape("'profile' is not an object".into())),
        }
        Ok(RcFile { root })
    }

    /// Perl's reading behaviour: `None` (missing file) or unreadable text
    /// gives [`RcFile::empty`]; the error, if any, is returned for logging.
    pub fn parse_or_default(text: Option<&str>) -> (Self, Option<ConfigError>) {
        match text.map(Self::parse) {
            None => (Self::empty(), None),
            Some(Ok(rc)) => (rc, None),
            Some(Err(e)) => (Self::empty(), Some(e)),
        }
    }

    /// Pretty-printed plain JSON (keys sorted), ending in a newline.
    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&Value::Object(self.root.clone()))
            .unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// The top-level object: the global defaults plus `version` and `profile`.
    pub fn global(&self) -> &JsonMap {
        &self.root
    }

    /// A profile's own values (not resolved), if it exists.
    pub fn profile(&self, name: &str) -> Option<&JsonMap> {
        self.root.get("profile")?.get(name)?.as_object()
    }

    /// The names of all profiles.
    pub fn profile_names(&self) -> Vec<String> {
        self.root
            .get("profile")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn parent_of(&self, name: &str) -> Option<String> {
        self.profile(name)?.get("parent").and_then(scalar_string)
    }

    /// `rc(name)` of spec §3.2: `rc(parent of name)` overlaid with the
    /// profile's own values; `rc(None)` is the whole top level. Unknown
    /// profiles contribute nothing (so their `rc` is the global level). A
    /// looping parent chain is [`ConfigError::ParentCycle`].
    ///
    /// ```
    /// use aemp_core::config::RcFile;
    /// let rc = RcFile::parse(r#"{"version":1,"secret":"g","profile":{
    ///     "a":{"seeds":"x:1","secret":"a"}, "b":{"parent":"a","secret":"b"}}}"#).unwrap();
    /// let b = rc.resolve(Some("b")).unwrap();
    /// assert_eq!((b["seeds"].as_str(), b["secret"].as_str()), (Some("x:1"), Some("b")));
    /// assert_eq!(rc.resolve(Some("nope")).unwrap()["secret"], "g");
    /// ```
    pub fn resolve(&self, name: Option<&str>) -> Result<JsonMap, ConfigError> {
        let mut chain: Vec<String> = Vec::new();
        let mut cur = name.map(String::from);
        while let Some(n) = cur {
            if chain.contains(&n) {
                chain.push(n);
                return Err(ConfigError::ParentCycle(chain));
            }
            cur = self.parent_of(&n);
            chain.push(n);
        }
        let mut map = self.root.clone();
        for n in chain.iter().rev() {
            if let Some(p) = self.profile(n) {
                for (k, v) in p {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(map)
    }

    /// `showprofile <name>`: only that profile's own values, pretty JSON
    /// (`{}` for an unknown profile).
    pub fn show_profile(&self, name: &str) -> String {
        let p = self.profile(name).cloned().unwrap_or_default();
        serde_json::to_string_pretty(&Value::Object(p)).unwrap_or_else(|_| "{}".into())
    }

    /// Creates a profile if it does not exist (`aemp profile <name>`).
    pub fn ensure_profile(&mut self, name: &str) {
        self.level_mut(&Target::profile(name));
    }

    /// `delprofile <name>`; true if it existed.
    pub fn del_profile(&mut self, name: &str) -> bool {
        self.root
            .get_mut("profile")
            .and_then(Value::as_object_mut)
            .is_some_and(|p| p.remove(name).is_some())
    }

    /// The editable object of a target, creating the profile (and the
    /// `profile` table) on demand.
    fn level_mut(&mut self, t: &Target) -> &mut JsonMap {
        match t {
            Target::Global => &mut self.root,
            Target::Profile(name) => {
                let profiles = self
                    .root
                    .entry("profile")
                    .or_insert_with(|| Value::Object(JsonMap::new()));
                if !profiles.is_object() {
                    *profiles = Value::Object(JsonMap::new());
                }
                let Value::Object(profiles) = profiles else {
                    unreachable!("just made an object")
                };
                let p = profiles
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(JsonMap::new()));
                if !p.is_object() {
                    *p = Value::Object(JsonMap::new());
                }
                let Value::Object(p) = p else {
                    unreachable!("just made an object")
                };
                p
            }
        }
    }

    /// A target's own values (`None` for an unknown profile).
    pub fn level(&self, t: &Target) -> Option<&JsonMap> {
        match t {
            Target::Global => Some(&self.root),
            Target::Profile(name) => self.profile(name),
        }
    }

    /// `set<key> <value>`: stores the value verbatim (low-level setters,
    /// `setnodeid`, `setsecret`, `setcert` with the file's text, …).
    pub fn set(&mut self, t: &Target, key: &str, value: Value) {
        self.level_mut(t).insert(key.into(), value);
    }

    /// `del<key>`: removes the key from the target; returns the old value.
    pub fn delete(&mut self, t: &Target, key: &str) -> Option<Value> {
        match t {
            Target::Global => self.root.remove(key),
            Target::Profile(name) => self
                .root
                .get_mut("profile")?
                .get_mut(name)?
                .as_object_mut()?
                .remove(key),
        }
    }

    /// `setseeds`/`setbinds`/`setservices`: a JSON array is stored as is; a
    /// string is split on commas (Perl `split /,/`, so `""` stores `[]`).
    pub fn set_list(&mut self, t: &Target, key: &str, value: &Value) -> Result<(), ConfigError> {
        let list = match value {
            Value::Array(a) => a.clone(),
            Value::String(s) => perl_split_comma(s)
                .into_iter()
                .map(|x| Value::String(x.into()))
                .collect(),
            other => {
                return Err(ConfigError::bad(
                    key,
                    format!("{other} is neither a JSON array nor a comma-separated list"),
                ))
            }
        };
        self.set(t, key, Value::Array(list));
        Ok(())
    }

    /// The target's list under `key`, normalised to an array (a
    /// comma-separated string is split; absent/null is empty).
    fn list_mut(&mut self, t: &Target, key: &str) -> Result<&mut Vec<Value>, ConfigError> {
        let level = self.level_mut(t);
        let v = level.entry(key).or_insert(Value::Null);
        let list = match v {
            Value::Null => vec![],
            Value::Array(_) => return Ok(v.as_array_mut().expect("is an array")),
            Value::String(s) => perl_split_comma(s)
                .into_iter()
                .map(|x| Value::String(x.into()))
                .collect(),
            other => return Err(ConfigError::bad(key, format!("{other} is not a list"))),
        };
        *v = Value::Array(list);
        Ok(v.as_array_mut().expect("is an array"))
    }

    /// `addseed`/`addbind`: removes equal entries, then appends (so the
    /// entry ends up last, exactly once).
    pub fn add_unique(&mut self, t: &Target, key: &str, entry: Value) -> Result<(), ConfigError> {
        let list = self.list_mut(t, key)?;
        list.retain(|x| *x != entry);
        list.push(entry);
        Ok(())
    }

    /// `addservice`: appends; duplicates allowed.
    pub fn add_entry(&mut self, t: &Target, key: &str, entry: Value) -> Result<(), ConfigError> {
        self.list_mut(t, key)?.push(entry);
        Ok(())
    }

    /// `delseed`/`delbind`/`delservice`: removes the first entry equal to
    /// `entry`; true if one was removed. A missing list stays missing.
    pub fn remove_first(
        &mut self,
        t: &Target,
        key: &str,
        entry: &Value,
    ) -> Result<bool, ConfigError> {
        let exists = self
            .level(t)
            .and_then(|l| l.get(key))
            .is_some_and(|v| !v.is_null());
        if !exists {
            return Ok(false);
        }
        let list = self.list_mut(t, key)?;
        match list.iter().position(|x| x == entry) {
            Some(i) => {
                list.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `setparent <parent>` for profile `name` (created on demand). Unlike
    /// Perl, a parent that would make the chain loop is refused.
    pub fn set_parent(&mut self, name: &str, parent: &str) -> Result<(), ConfigError> {
        let mut chain = vec![name.to_string()];
        let mut cur = Some(parent.to_string());
        while let Some(n) = cur {
            let looped = chain.contains(&n);
            cur = self.parent_of(&n);
            chain.push(n);
            if looped {
                return Err(ConfigError::ParentCycle(chain));
            }
        }
        self.set(
            &Target::profile(name),
            "parent",
            Value::String(parent.into()),
        );
        Ok(())
    }

    /// `delparent` for profile `name`; true if it had one.
    pub fn del_parent(&mut self, name: &str) -> bool {
        self.profile(name).is_some_and(|p| p.contains_key("parent"))
            && self.delete(&Target::profile(name), "parent").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> RcFile {
        RcFile::parse(s).unwrap()
    }

    #[test]
    fn relaxed_comments_and_trailing_commas() {
        let rc = parse(
            "# header\n{\n \"version\": 1, # the version\n \"seeds\": [\"a:1\", \"b:2\",],\n \"profile\": {\"x\": {\"k\": 1,},},\n}\n",
        );
        assert_eq!(rc.global()["seeds"], json!(["a:1", "b:2"]));
        assert_eq!(rc.profile("x").unwrap()["k"], 1);
    }

    #[test]
    fn relaxed_leaves_strings_alone() {
        let rc = parse(r##"{"s": "a # b,]", "t": "q\"#,}", "u": "\\", "v": ",}"}"##);
        assert_eq!(rc.global()["s"], "a # b,]");
        assert_eq!(rc.global()["t"], "q\"#,}");
        assert_eq!(rc.global()["u"], "\\");
        assert_eq!(rc.global()["v"], ",}");
    }

    #[test]
    fn relaxed_comma_before_comment_then_bracket() {
        let rc = parse("{\"a\": [1, # c ]\n]}");
        assert_eq!(rc.global()["a"], json!([1]));
    }

    #[test]
    fn double_trailing_comma_is_an_error() {
        assert!(matches!(
            RcFile::parse("[1,,]"),
            Err(ConfigError::RcSyntax { .. })
        ));
    }

    #[test]
    fn errors_are_distinguishable() {
        assert_eq!(RcFile::parse(""), Err(ConfigError::RcEmpty));
        assert_eq!(
            RcFile::parse("# only a comment\n"),
            Err(ConfigError::RcEmpty)
        );
        match RcFile::parse("{\n\"a\": }") {
            Err(ConfigError::RcSyntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(RcFile::parse("[1]"), Err(ConfigError::RcShape(_))));
        assert!(matches!(
            RcFile::parse(r#"{"profile": 3}"#),
            Err(ConfigError::RcShape(_))
        ));
        assert!(matches!(
            RcFile::parse(r#"{"profile": {"a": []}}"#),
            Err(ConfigError::RcShape(_))
        ));
        assert!(matches!(
            RcFile::parse(r#"{"profile": {"a": {"parent": 1}}}"#),
            Err(ConfigError::RcShape(_))
        ));
        assert!(RcFile::parse("{").unwrap_err().is_rc_unreadable());
    }

    #[test]
    fn parse_or_default_falls_back_like_perl() {
        let (rc, e) = RcFile::parse_or_default(None);
        assert_eq!((rc, e), (RcFile::empty(), None));
        let (rc, e) = RcFile::parse_or_default(Some("nonsense"));
        assert_eq!(rc.global(), RcFile::empty().global());
        assert!(e.unwrap().is_rc_unreadable());
    }

    #[test]
    fn empty_is_version_1_and_round_trips() {
        let rc = RcFile::empty();
        assert_eq!(Value::Object(rc.global().clone()), json!({"version": 1}));
        let text = rc.to_pretty_json();
        assert!(text.ends_with('\n'));
        assert_eq!(parse(&text), rc);
    }

    #[test]
    fn resolve_global_and_chain() {
        let rc = parse(
            r#"{"version":1,"secret":"g","binds":"*:1","profile":{
              "base":{"seeds":["s:1"],"secret":"base"},
              "mid":{"parent":"base","binds":"*:2"},
              "leaf":{"parent":"mid","secret":"leaf"}}}"#,
        );
        let g = rc.resolve(None).unwrap();
        assert_eq!(g["secret"], "g");
        assert!(g.contains_key("profile") && g.contains_key("version"));
        let l = rc.resolve(Some("leaf")).unwrap();
        assert_eq!(l["secret"], "leaf");
        assert_eq!(l["binds"], "*:2");
        assert_eq!(l["seeds"], json!(["s:1"]));
        assert_eq!(l["parent"], "mid");
        // unknown profile = global level, unknown parent likewise
        assert_eq!(rc.resolve(Some("zz")).unwrap(), g);
    }

    #[test]
    fn resolve_detects_cycles() {
        let rc = parse(r#"{"profile":{"a":{"parent":"b"},"b":{"parent":"a"},"s":{"parent":"s"}}}"#);
        assert_eq!(
            rc.resolve(Some("a")),
            Err(ConfigError::ParentCycle(vec![
                "a".into(),
                "b".into(),
                "a".into()
            ]))
        );
        assert!(matches!(
            rc.resolve(Some("s")),
            Err(ConfigError::ParentCycle(_))
        ));
    }

    #[test]
    fn set_and_delete_on_targets() {
        let mut rc = RcFile::empty();
        rc.set(&Target::Global, "secret", json!("x"));
        rc.set(&Target::profile("p"), "nodelay", json!(0));
        assert_eq!(rc.global()["secret"], "x");
        assert_eq!(rc.profile("p").unwrap()["nodelay"], 0);
        assert_eq!(rc.delete(&Target::profile("p"), "nodelay"), Some(json!(0)));
        assert_eq!(rc.delete(&Target::Global, "secret"), Some(json!("x")));
        assert_eq!(rc.delete(&Target::Global, "secret"), None);
        assert!(rc.profile("p").unwrap().is_empty());
        assert_eq!(rc.delete(&Target::profile("q"), "secret"), None);
        assert!(rc.profile("q").is_none());
    }

    #[test]
    fn set_list_forms() {
        let mut rc = RcFile::empty();
        let g = Target::Global;
        rc.set_list(&g, "seeds", &json!("a:1,b:2")).unwrap();
        assert_eq!(rc.global()["seeds"], json!(["a:1", "b:2"]));
        rc.set_list(&g, "seeds", &json!("")).unwrap();
        assert_eq!(rc.global()["seeds"], json!([]));
        rc.set_list(&g, "services", &json!([["m::f", 1, 2]]))
            .unwrap();
        assert_eq!(rc.global()["services"], json!([["m::f", 1, 2]]));
        assert!(rc.set_list(&g, "seeds", &json!(5)).is_err());
    }

    #[test]
    fn add_unique_moves_to_end() {
        let mut rc = RcFile::empty();
        let g = Target::Global;
        rc.add_unique(&g, "seeds", json!("a:1")).unwrap();
        rc.add_unique(&g, "seeds", json!("b:2")).unwrap();
        rc.add_unique(&g, "seeds", json!("a:1")).unwrap();
        assert_eq!(rc.global()["seeds"], json!(["b:2", "a:1"]));
    }

    #[test]
    fn add_entry_allows_duplicates_and_splits_strings() {
        let mut rc = parse(r#"{"services": "x,y"}"#);
        let g = Target::Global;
        rc.add_entry(&g, "services", json!("x")).unwrap();
        assert_eq!(rc.global()["services"], json!(["x", "y", "x"]));
        rc.set(&g, "services", json!({}));
        assert!(rc.add_entry(&g, "services", json!("x")).is_err());
    }

    #[test]
    fn remove_first_only_first() {
        let mut rc = parse(r#"{"services": ["x", "y", "x"]}"#);
        let g = Target::Global;
        assert!(rc.remove_first(&g, "services", &json!("x")).unwrap());
        assert_eq!(rc.global()["services"], json!(["y", "x"]));
        assert!(!rc.remove_first(&g, "services", &json!("zz")).unwrap());
        assert!(!rc.remove_first(&g, "seeds", &json!("zz")).unwrap());
        assert!(!rc.global().contains_key("seeds"));
    }

    #[test]
    fn parents_and_profiles() {
        let mut rc = RcFile::empty();
        rc.set_parent("doomed", "server").unwrap();
        assert_eq!(rc.profile("doomed").unwrap()["parent"], "server");
        assert!(matches!(
            rc.set_parent("server", "doomed"),
            Err(ConfigError::ParentCycle(_))
        ));
        assert!(matches!(
            rc.set_parent("x", "x"),
            Err(ConfigError::ParentCycle(_))
        ));
        assert!(rc.profile("server").is_none());
        assert!(rc.del_parent("doomed"));
        assert!(!rc.del_parent("doomed"));
        assert!(!rc.del_parent("never"));
        assert!(rc.profile("never").is_none());
        rc.ensure_profile("e");
        assert_eq!(rc.profile_names(), ["doomed", "e"]);
        assert!(rc.del_profile("e"));
        assert!(!rc.del_profile("e"));
    }

    #[test]
    fn show_profile_own_values_only() {
        let rc = parse(r#"{"secret":"g","profile":{"a":{"seeds":["x:1"],"parent":"b"}}}"#);
        let shown: Value = serde_json::from_str(&rc.show_profile("a")).unwrap();
        assert_eq!(shown, json!({"seeds": ["x:1"], "parent": "b"}));
        assert_eq!(rc.show_profile("none"), "{}");
    }

    #[test]
    fn unknown_keys_survive_round_trip() {
        let rc = parse(r#"{"version":1,"eval":"1;","weird":{"deep":[1,2]}}"#);
        let again = parse(&rc.to_pretty_json());
        assert_eq!(again.global()["weird"], json!({"deep": [1, 2]}));
        assert_eq!(again.global()["eval"], "1;");
    }
}
