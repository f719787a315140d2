//! Reading and writing the rc file for editing (spec §3.5): a file that
//! exists but cannot be read or parsed is never overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use aemp::core::config::{ConfigError, RcFile};

use super::CliError;

/// The rc file as loaded for a run of `aemp`: the parsed content (or the
/// empty configuration for a missing file), and whether it was modified.
pub struct RcState {
    path: Option<PathBuf>,
    rc: Option<RcFile>,
    dirty: bool,
}

impl RcState {
    /// Nothing loaded yet; [`RcState::get`] loads on first use.
    pub fn new() -> Self {
        RcState {
            path: aemp::rc_path(),
            rc: None,
            dirty: false,
        }
    }

    /// The rc file path, or an error if there is none (no `HOME`, no
    /// `PERL_ANYEVENT_MP_RC`).
    pub fn path(&self) -> Result<&Path, CliError> {
        self.path.as_deref().ok_or_else(|| {
            CliError::runtime("no rc file location: set HOME or PERL_ANYEVENT_MP_RC")
        })
    }

    /// The configuration, loading it on first use. A missing file (or one
    /// holding only whitespace) is the empty configuration; an unreadable
    /// or unparsable one is an error, so it is never overwritten.
    pub fn get(&mut self) -> Result<&RcFile, CliError> {
        if self.rc.is_none() {
            self.rc = Some(match &self.path {
                None => RcFile::empty(),
                Some(p) => load(p)?,
            });
        }
        Ok(self.rc.as_ref().expect("just loaded"))
    }

    /// The configuration for modification; marks it for saving.
    pub fn get_mut(&mut self) -> Result<&mut RcFile, CliError> {
        self.path()?;
        self.get()?;
        self.dirty = true;
        Ok(self.rc.as_mut().expect("just loaded"))
    }

    /// Writes the file if it was modified (see [`write_atomic`]).
    pub fn save(&mut self) -> Result<(), CliError> {
        if !self.dirty {
            return Ok(());
        }
        let path = self.path()?.to_path_buf();
        let text = self
            .rc
            .as_ref()
            .expect("dirty implies loaded")
            .to_pretty_json();
        write_atomic(&path, &text)
            .map_err(|e| CliError::runtime(format!("{}: cannot write: {e}", path.display())))?;
        self.dirty = false;
        Ok(())
    }
}

fn load(path: &Path) -> Result<RcFile, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RcFile::empty()),
        Err(e) => {
            return Err(CliError::runtime(format!(
                "{}: cannot read the rc file: {e} (not touching it)",
                path.display()
            )))
        }
    };
    match RcFile::parse(&text) {
        Ok(rc) => Ok(rc),
        Err(ConfigError::RcEmpty) if text.trim().is_empty() => Ok(RcFile::empty()),
        Err(e) => Err(CliError::runtime(format!(
            "{}: {e} (fix or remove the file; not touching it)",
            path.display()
        ))),
    }
}

/// Perl's way of saving the rc file: the text goes to `<file>~new~`, the
/// old file is hard-linked to `<file>~` (the backup), then `<file>~new~`
/// is renamed over `<file>`. The file is created readable only by its
/// owner (it holds the secret).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let with_suffix = |s: &str| {
        let mut p = path.as_os_str().to_os_string();
        p.push(s);
        PathBuf::from(p)
    };
    let new = with_suffix("~new~");
    let backup = with_suffix("~");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    {
        let mut f = opts.open(&new)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    if path.exists() {
        let _ = std::fs::remove_file(&backup);
        let _ = std::fs::hard_link(path, &backup);
    }
    std::fs::rename(&new, path)
}
