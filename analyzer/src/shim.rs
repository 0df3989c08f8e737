//! Finding libholdcheck.so for `holdcheck run`.
//!
//! The binary carries a copy of the shim (built by build.rs), so it works
//! alone; a shim next to the binary or named by `$HOLDCHECK_LIB` wins.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const SHIM_FILE: &str = "libholdcheck.so";

/// The shim built with this holdcheck.
static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libholdcheck.so"));

/// `$HOLDCHECK_LIB`, else next to the holdcheck executable (or in `lib/`
/// beside its directory), else the embedded copy, extracted to a cache.
pub fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HOLDCHECK_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(std::fs::canonicalize(&p).unwrap_or(p));
        }
        bail!("HOLDCHECK_LIB={} is not a file", p.display());
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            for c in [
                dir.join(SHIM_FILE),
                dir.join("../lib/holdcheck").join(SHIM_FILE),
            ] {
                if c.is_file() {
                    return Ok(std::fs::canonicalize(&c).unwrap_or(c));
                }
            }
        }
    }
    extract_embedded()
}

/// Writes the embedded shim to `<cache>/holdcheck/<content hash>/` once.
fn extract_embedded() -> Result<PathBuf> {
    if EMBEDDED.is_empty() {
        bail!("this holdcheck was built without a shim (a fuzzing build): set HOLDCHECK_LIB");
    }
    let hash = EMBEDDED.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let cache = cache_dir().join(format!("{hash:016x}"));
    let target = cache.join(SHIM_FILE);
    if std::fs::metadata(&target).is_ok_and(|m| m.len() == EMBEDDED.len() as u64) {
        return Ok(target);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cache)
        .with_context(|| {
            format!(
                "cannot create {} for the shim; set HOLDCHECK_LIB",
                cache.display()
            )
        })?;
    // Write aside and rename: a concurrent holdcheck never sees half a file.
    let tmp = cache.join(format!(".{SHIM_FILE}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(EMBEDDED)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &target).with_context(|| format!("cannot write {}", target.display()))?;
    Ok(target)
}

fn cache_dir() -> PathBuf {
    let home_cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")));
    match home_cache {
        Some(c) if !c.as_os_str().is_empty() => c.join("holdcheck"),
        // SAFETY: getuid has no preconditions.
        _ => std::env::temp_dir().join(format!("holdcheck-{}-lib", unsafe { libc::getuid() })),
    }
}
