//! The crate's one atomic file write: models, weights, History JSON/CSV, plots and predictions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed, synced and renamed over `path`, then the directory is synced (on unix). On any error
/// the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_inner(path.as_ref(), bytes, None)
}

/// [`write_atomic`] that fails after writing `fail_after` bytes, as a crash mid-save would:
/// for tests of the atomicity.
#[doc(hidden)]
pub fn write_atomic_failing_after(path: impl AsRef<Path>, bytes: &[u8], fail_after: usize) -> Result<()> {
    write_atomic_inner(path.as_ref(), bytes, Some(fail_after))
}

/// The directory `path` is in (`.` for a bare file name) and a fresh temporary path beside it:
/// `.<name>.tmp-<pid>-<n><suffix>`, unique within this process.
pub(crate) fn temp_beside(path: &Path, suffix: &str) -> Result<(PathBuf, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("file name", path.display(), "must name a file, not a directory"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}{suffix}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    Ok((dir, tmp))
}

fn write_atomic_inner(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let (dir, tmp) = temp_beside(path, "")?;
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io(&tmp))?;
        match fail_after {
            Some(n) => {
                f.write_all(&bytes[..n.min(bytes.len())]).map_err(io(&tmp))?;
                return Err(Error::Io {
                    path: tmp.clone(),
                    source: std::io::Error::other("simulated failure in the middle of a save"),
                });
            }
            None => f.write_all(bytes).map_err(io(&tmp))?,
        }
        f.flush().map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
