//! What CI controls: a stable signature per finding, suppressions (in the
//! spirit of sanitizer suppression files) and a baseline of known findings.
//!
//! Suppressions file: one rule a line, `#` comments:
//!
//! ```text
//! fun:send_warn            a frame's function
//! src:*/vendor/*           a frame's source file
//! module:libfoo.so*        a frame's module
//! hazard:fun:git_*         the same, for one kind of finding only
//! ```
//!
//! Patterns match the whole string; `*` matches any run of characters.

use super::*;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashSet};
use std::hash::{Hash, Hasher};

/// A site as stable across runs as the build: function and file:line, or
/// module+offset for stripped code (never an address).
fn site_key(f: &Frame) -> String {
    match (&f.function, &f.file, f.line) {
        (Some(func), Some(file), Some(line)) => format!("{func}@{file}:{line}"),
        (Some(func), _, _) => func.clone(),
        _ => match (&f.module, &f.offset) {
            (Some(m), Some(o)) => format!("{m}+{o}"),
            // In no known module: only the address tells sites apart.
            _ => f.pc.clone(),
        },
    }
}

/// The finding's signature: its kind and the sorted set of its acquisition
/// and call sites (with the call made there), else where its threads are. The same bug seen in many
/// runs has one signature.
pub fn signature(f: &Finding) -> String {
    let mut sites: BTreeSet<String> = BTreeSet::new();
    for e in &f.edges {
        if let Some(fr) = crate::symbolize::program_frame(&f.stacks[e.stack].frames) {
            // The call too: a write and a read on one line are two sites.
            match &e.call {
                Some(call) => sites.insert(format!("{call}:{}", site_key(&fr))),
                None => sites.insert(site_key(&fr)),
            };
        }
        for fr in [&e.held_at, &e.acquired_at].into_iter().flatten() {
            sites.insert(site_key(fr));
        }
    }
    if sites.is_empty() {
        // No edge with a stack (a stall whose root blocks in a call that
        // names no queue): where each of its threads is.
        for t in &f.thread_states {
            if let Some(fr) = t
                .stack
                .and_then(|i| crate::symbolize::program_frame(&f.stacks[i].frames))
            {
                sites.insert(site_key(&fr));
            }
        }
    }
    if sites.is_empty() {
        // No stack at all (inspect without --stacks): the nodes' kinds.
        for n in &f.nodes {
            sites.insert(match n {
                NodeInfo::Lock { kind, mode, .. } => {
                    format!("{kind}:{}", mode.as_deref().unwrap_or(""))
                }
                NodeInfo::Channel {
                    channel, direction, ..
                } => format!("{}:{direction}", channel.family()),
            });
        }
    }
    let mut h = std::hash::DefaultHasher::new();
    f.kind.hash(&mut h);
    sites.hash(&mut h);
    format!("{:016x}", h.finish())
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Fun,
    Src,
    Module,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: Option<String>,
    field: Field,
    pattern: String,
    /// `file:line: text`, to name a rule that matched nothing.
    origin: String,
}

/// Parsed suppression rules.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    rules: Vec<Rule>,
}

impl Suppressions {
    pub fn parse(text: &str, name: &str) -> Result<Suppressions> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, rest) = match line.split_once(':') {
                Some((k, rest)) if KINDS.contains(&k) => (Some(k.to_string()), rest),
                // `deadlok:fun:x`: a kind misspelt, not a field.
                Some((k, rest))
                    if !FIELDS.contains(&k)
                        && rest
                            .split_once(':')
                            .is_some_and(|(f, _)| FIELDS.contains(&f)) =>
                {
                    bail!(
                        "{name}:{}: unknown kind '{k}' (one of {})",
                        i + 1,
                        KINDS.join(", ")
                    )
                }
                _ => (None, line),
            };
            let Some((field, pattern)) = rest.split_once(':') else {
                bail!(
                    "{name}:{}: '{line}' is not [kind:]fun|src|module:pattern",
                    i + 1
                );
            };
            let field = match field {
                "fun" => Field::Fun,
                "src" => Field::Src,
                "module" => Field::Module,
                other => bail!(
                    "{name}:{}: unknown field '{other}' (fun, src or module)",
                    i + 1
                ),
            };
            if pattern.is_empty() {
                bail!("{name}:{}: empty pattern", i + 1);
            }
            rules.push(Rule {
                kind,
                field,
                pattern: pattern.to_string(),
                origin: format!("{name}:{}: {line}", i + 1),
            });
        }
        Ok(Suppressions { rules })
    }

    pub fn load(path: &std::path::Path) -> Result<Suppressions> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read suppressions {}", path.display()))?;
        Suppressions::parse(&text, &path.display().to_string())
    }

    /// The first rule that matches a frame of the finding.
    fn matching(&self, f: &Finding) -> Option<usize> {
        let frames = f
            .stacks
            .iter()
            .flat_map(|s| s.frames.iter())
            .chain(
                f.edges
                    .iter()
                    .flat_map(|e| [&e.held_at, &e.acquired_at].into_iter().flatten()),
            )
            .chain(f.location.iter());
        let frames: Vec<&Frame> = frames.collect();
        self.rules.iter().position(|r| {
            r.kind.as_ref().is_none_or(|k| *k == f.kind)
                && frames.iter().any(|fr| match r.field {
                    Field::Fun => fr.function.as_deref().is_some_and(|v| glob(&r.pattern, v)),
                    Field::Src => fr
                        .file
                        .as_deref()
                        .is_some_and(|v| src_matches(&r.pattern, v)),
                    Field::Module => fr.module.as_deref().is_some_and(|v| glob(&r.pattern, v)),
                })
        })
    }
}

const FIELDS: [&str; 3] = ["fun", "src", "module"];

/// `src:` patterns match the whole path, or its end after a `/`:
/// `src:abba.c` and `src:c/abba.c` both match `/work/examples/c/abba.c`.
fn src_matches(pattern: &str, path: &str) -> bool {
    glob(pattern, path) || glob(&format!("*/{pattern}"), path)
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first)
        || !s[first.len()..].ends_with(last)
        || s.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The signatures of a previous JSON report.
pub fn load_baseline(path: &std::path::Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read baseline {}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("baseline {} is not a holdcheck JSON report", path.display()))?;
    Ok(report.findings.iter().map(signature).collect())
}

/// Signs every finding, then drops the suppressed and the known ones.
pub fn apply(
    report: &mut Report,
    suppressions: Option<&Suppressions>,
    baseline: Option<&HashSet<String>>,
) {
    for f in report.findings.iter_mut() {
        f.signature = signature(f);
    }
    let before = report.findings.len();
    if let Some(s) = suppressions {
        let mut used = vec![false; s.rules.len()];
        report.findings.retain(|f| match s.matching(f) {
            Some(i) => {
                used[i] = true;
                false
            }
            None => true,
        });
        // As TSan's print_suppressions: a rule that matched nothing is
        // said (a typo, or a bug that is gone).
        report.unmatched_suppressions = s
            .rules
            .iter()
            .zip(used)
            .filter(|(_, u)| !u)
            .map(|(r, _)| r.origin.clone())
            .collect();
    }
    report.suppressed = before - report.findings.len();
    let before = report.findings.len();
    if let Some(b) = baseline {
        report.findings.retain(|f| !b.contains(&f.signature));
    }
    report.baselined = before - report.findings.len();
    report.summary = Summary::of(&report.findings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("send_warn", "send_warn"));
        assert!(!glob("send_warn", "send_warn2"));
        assert!(glob("send_*", "send_warn"));
        assert!(glob("*/vendor/*", "/src/vendor/x.c"));
        assert!(!glob("*/vendor/*", "/src/vend/x.c"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "a-b-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn bad_suppression_lines_are_named() {
        let e = Suppressions::parse("fun:ok\nfoo:bar\n", "s.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.txt:2") && e.contains("'foo'"), "{e}");
        let e = Suppressions::parse("nothing here", "s.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.txt:1"), "{e}");
        assert!(Suppressions::parse("# only\n\nhazard:src:*.c\n", "s").is_ok());
        let e = Suppressions::parse("deadlok:fun:x\n", "s.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown kind 'deadlok'") && e.contains("potential-deadlock"),
            "{e}"
        );
        // A C++ name's colons are the pattern's.
        assert!(Suppressions::parse("fun:std::mutex::lock\n", "s").is_ok());
    }

    #[test]
    fn src_matches_by_file_name_or_path_end() {
        assert!(src_matches("abba.c", "/work/examples/c/abba.c"));
        assert!(src_matches("c/abba.c", "/work/examples/c/abba.c"));
        assert!(src_matches("*/examples/*", "/work/examples/c/abba.c"));
        assert!(!src_matches("bba.c", "/work/examples/c/abba.c"));
    }
}
