//! Reading trace directories: every `holdcheck.*.trace` file, one process
//! each. A truncated last line (the process was killed mid-write) and bad
//! lines are reported with file and line, and the rest is still read.

use anyhow::{bail, Context, Result};
use holdcheck_format::{Channel, Record, TRACE_PREFIX, TRACE_SUFFIX, TRACE_VERSION};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

mod lock_order;

/// One process's trace file.
#[derive(Debug, Clone)]
pub struct TraceFile {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// Problems met while reading (bad lines, unknown version), for the report.
    pub warnings: Vec<String>,
}

/// Longest line accepted; a longer one is corrupt (stacks are at most 64
/// frames, so real records are far shorter).
const MAX_LINE: usize = 1 << 20;

/// Most locks a record may name as held (as many as the shim tracks),
/// segments a module may have, frames a stack may have, threads an
/// observation may list: a record beyond them is damaged or hostile, and
/// is cut (the analysis of some records is quadratic in them).
use holdcheck_format::MAX_HELD;
const MAX_SEGMENTS: usize = 64;
const MAX_FRAMES: usize = 256;
const MAX_OBSERVED_THREADS: usize = 4096;

/// Cuts a record down to the bounds; says what was cut.
fn bound(r: &mut Record) -> Option<String> {
    fn cut<T>(v: &mut Vec<T>, max: usize, what: &str) -> Option<String> {
        (v.len() > max).then(|| {
            let n = v.len();
            v.truncate(max);
            format!("record with {n} {what} cut to {max}")
        })
    }
    match r {
        Record::LockOrder { held, .. } | Record::HeldAcrossCall { held, .. } => {
            cut(held, MAX_HELD, "held locks")
        }
        Record::Stack { frames, .. } => cut(frames, MAX_FRAMES, "frames"),
        Record::Module { segments, .. } => cut(segments, MAX_SEGMENTS, "segments"),
        Record::Observed(o) => {
            let mut said = cut(&mut o.threads, MAX_OBSERVED_THREADS, "threads");
            for t in o.threads.iter_mut() {
                said = said.or(cut(&mut t.held, MAX_HELD, "held locks"));
            }
            // Edges must name nodes that exist.
            let n = o.nodes.len();
            let before = o.edges.len();
            o.edges.retain(|e| e.from < n && e.to < n);
            said.or((o.edges.len() < before).then(|| "edges naming no node dropped".to_string()))
        }
        _ => None,
    }
}

/// Lists the trace files of a directory, in name order.
pub fn trace_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read trace directory {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TRACE_PREFIX) && n.ends_with(TRACE_SUFFIX))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every trace file of the given directories.
pub fn read_dirs(dirs: &[PathBuf]) -> Result<Vec<TraceFile>> {
    files_of(dirs)?.iter().map(|f| read_file(f)).collect()
}

/// The trace files of the given directories; a directory without one is
/// an error.
pub fn files_of(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in dirs {
        let files = trace_files(dir)?;
        if files.is_empty() {
            bail!(
                "no trace files ({TRACE_PREFIX}*{TRACE_SUFFIX}) in {}: was the program run with the shim \
                 (holdcheck run, or LD_PRELOAD=libholdcheck.so with HOLDCHECK_DIR set to it)?",
                dir.display()
            );
        }
        out.extend(files);
    }
    Ok(out)
}

/// Reads one trace file. I/O errors fail; content problems become warnings.
pub fn read_file(path: &Path) -> Result<TraceFile> {
    read_from(path, open(path)?)
}

/// Opens one trace file. Only a regular file is read, opened without
/// following a symbolic link and without blocking (a FIFO named like a
/// trace would hang the reader; a link to `/dev/urandom` would never end);
/// a file whose first bytes are not a trace record is refused as a whole.
pub fn open(path: &Path) -> Result<impl BufRead> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let shown = path.display();
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => anyhow::anyhow!(
                "{shown} is a symbolic link; holdcheck reads only the trace files the shim wrote"
            ),
            _ => anyhow::Error::new(e).context(format!("cannot open trace {shown}")),
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read trace {shown}"))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        bail!("{shown} is {what}, not a trace (the shim writes regular files)");
    }
    let mut reader = BufReader::new(file);
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read trace {shown}"))?;
    if !head.is_empty() && !head.starts_with(b"{\"t\":") {
        bail!("{shown} is not a holdcheck trace: it does not begin with a trace record");
    }
    Ok(reader)
}

/// Problems reported per file; more are counted in one last line (40 MB
/// of damage must not become 40 MB of warnings).
const MAX_WARNINGS: usize = 50;

/// Reads a trace from any reader; `path` names it in warnings. Only I/O
/// errors fail: whatever the bytes are, the result is records and warnings
/// (the fuzz target in `fuzz/` holds it to that).
pub fn read_from(path: &Path, reader: impl BufRead) -> Result<TraceFile> {
    let mut records = Vec::new();
    let warnings = read_each(path, reader, |r| records.push(r))?;
    Ok(TraceFile {
        path: path.to_path_buf(),
        records,
        warnings,
    })
}

/// [`read_from`] without keeping the records: each goes to `sink` as it
/// is read, in order (a trace of a million facts is never held whole).
/// Returns the warnings.
pub fn read_each(
    path: &Path,
    mut reader: impl BufRead,
    mut sink: impl FnMut(Record),
) -> Result<Vec<String>> {
    let mut warnings = Warnings::default();
    // Whether the first record was the header (None before any record).
    let mut headed: Option<bool> = None;
    let mut line = Vec::new();
    let mut offset = 0u64;
    let mut lineno = 0usize;
    // The process, from the header (0 until it is read).
    let mut pid = 0u32;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read trace {}", path.display()))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let start = offset;
        offset += n as u64;
        if line.last() != Some(&b'\n') {
            if n > MAX_LINE {
                warnings.add(format!("{}:{lineno} (offset {start}): line longer than {MAX_LINE} bytes; the rest of the file is skipped", path.display()));
            } else {
                warnings.add(format!(
                    "{}:{lineno} (offset {start}): truncated last record ignored (the process was killed while writing it, or the disk was full)",
                    path.display()
                ));
            }
            break;
        }
        match parse_record(&line) {
            Ok(Record::Header { version, .. }) if version != TRACE_VERSION => {
                // First, as the shim writes it: the file is skipped. Later
                // (a damaged file), the records before it are kept.
                let what = if headed.is_none() {
                    "file skipped"
                } else {
                    "the rest of the file skipped"
                };
                warnings.add(format!(
                    "{}:{lineno}: trace format version {version}, this holdcheck reads version {TRACE_VERSION}; {what}",
                    path.display()
                ));
                break;
            }
            Ok(mut r) => {
                headed.get_or_insert(matches!(r, Record::Header { .. }));
                if let Record::Header { pid: p, .. } = r {
                    pid = p;
                }
                // A condition variable, a semaphore and a thread are
                // private to their process: the shim leaves their pid to
                // the trace they are in.
                r.channels_mut(|c| match c {
                    Channel::Condvar { pid: p, .. }
                    | Channel::Semaphore { pid: p, .. }
                    | Channel::Thread { pid: p, .. } => *p = pid,
                    _ => {}
                });
                if let Some(what) = bound(&mut r) {
                    warnings.add(format!(
                        "{}:{lineno} (offset {start}): {what}",
                        path.display()
                    ));
                }
                sink(r);
            }
            Err(e) => warnings.add(format!(
                "{}:{lineno} (offset {start}): bad record skipped: {e}",
                path.display()
            )),
        }
    }
    if headed == Some(false) {
        warnings.add(format!(
            "{}: no header record; process details unknown",
            path.display()
        ));
    }
    Ok(warnings.done(path))
}

/// The warnings of one file, at most [`MAX_WARNINGS`] of them kept.
#[derive(Default)]
struct Warnings {
    kept: Vec<String>,
    more: usize,
}

impl Warnings {
    fn add(&mut self, w: String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(w);
        } else {
            self.more += 1;
        }
    }

    fn done(mut self, path: &Path) -> Vec<String> {
        if self.more > 0 {
            self.kept.push(format!(
                "{}: {} more problems not shown",
                path.display(),
                self.more
            ));
        }
        self.kept
    }
}

/// One record of a line; lock-order facts by their own reader.
fn parse_record(line: &[u8]) -> serde_json::Result<Record> {
    lock_order::parse(line).unwrap_or_else(|| serde_json::from_slice(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdcheck_format::Record;

    /// A directory of the test's own, removed when the test is done.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "holdcheck-trace-test-{}-{name}",
                std::process::id()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn temp_file(name: &str, content: &[u8]) -> (TempDir, PathBuf) {
        let dir = TempDir::new(name);
        let p = dir.0.join("holdcheck.1.0.trace");
        fs::write(&p, content).unwrap();
        (dir, p)
    }

    fn header() -> Vec<u8> {
        Record::Header {
            version: TRACE_VERSION,
            pid: 1,
            ppid: 0,
            exe: "/bin/x".into(),
            cmdline: vec![],
            call_clock_res_ns: None,
        }
        .to_line()
    }

    #[test]
    fn a_truncated_last_line_is_reported_and_the_rest_kept() {
        let mut c = header();
        c.extend(
            Record::Thread {
                tid: 2,
                name: "t".into(),
            }
            .to_line(),
        );
        c.extend_from_slice(br#"{"t":"thread","tid":3,"na"#);
        let (_dir, p) = temp_file("trunc", &c);
        let t = read_file(&p).unwrap();
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].contains("truncated"), "{:?}", t.warnings);
        assert!(t.warnings[0].contains("offset"), "{:?}", t.warnings);
    }

    #[test]
    fn a_corrupt_line_is_skipped_with_its_place() {
        let mut c = header();
        c.extend_from_slice(b"garbage\n");
        c.extend(
            Record::Thread {
                tid: 2,
                name: "t".into(),
            }
            .to_line(),
        );
        let (_dir, p) = temp_file("corrupt", &c);
        let t = read_file(&p).unwrap();
        assert_eq!(t.records.len(), 2);
        assert!(t.warnings[0].contains(":2 "), "{:?}", t.warnings);
    }

    #[test]
    fn an_empty_directory_is_a_clear_error() {
        let dir = TempDir::new("empty");
        let e = read_dirs(std::slice::from_ref(&dir.0))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no trace files"), "{e}");
    }
}
