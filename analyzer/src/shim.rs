//! Finding libholdcheck.so for `holdcheck run`.

use anyhow::{bail, Result};
use std::path::PathBuf;

pub const SHIM_FILE: &str = "libholdcheck.so";

/// `$HOLDCHECK_LIB`, else next to the holdcheck executable, else in a
/// `lib/` beside its directory (an installed layout).
pub fn locate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HOLDCHECK_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(std::fs::canonicalize(&p).unwrap_or(p));
        }
        bail!("HOLDCHECK_LIB={} is not a file", p.display());
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            for c in [
                dir.join(SHIM_FILE),
                dir.join("../lib").join(SHIM_FILE),
                dir.join("../lib/holdcheck").join(SHIM_FILE),
            ] {
                if c.is_file() {
                    return Ok(std::fs::canonicalize(&c).unwrap_or(c));
                }
                tried.push(c.display().to_string());
            }
        }
    }
    bail!(
        "cannot find {SHIM_FILE}; looked in: {}. Build it with `cargo build --release` \
         (it lands next to the holdcheck binary) or set HOLDCHECK_LIB to its path",
        if tried.is_empty() {
            "(no executable path)".to_string()
        } else {
            tried.join(", ")
        }
    )
}
