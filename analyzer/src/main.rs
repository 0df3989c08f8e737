//! The `holdcheck` command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use holdcheck::report::{text, Report, RunInfo};
use holdcheck::run::{self, RunOptions};
use holdcheck::trace;
use holdcheck::{analyse_dirs, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

/// Finds deadlocks in C/C++ programs, including the ones that pass through
/// the kernel: a lock held across a blocking send, receive, read or write
/// whose other end needs that lock.
///
/// Exit status: 0 no findings, 1 findings, 2 holdcheck failed.
/// The environment, in `--help` (the shim reads it in the traced program).
const ENVIRONMENT: &str = "\
Environment (read by the shim in the traced program; `run` passes it on):
  HOLDCHECK_OPTIONS=key=value:...
      verbosity=0|1|2      1: say where the trace went at exit
      stack_depth=1..64    frames kept per stack (default 32)
      watchdog_ms=N        how often the watchdog looks (default 1000)
      stall_ms=N           age of a stall or stalled call (default 5000)
      ended_stall_ms=N     report a stall that ended after N ms (default 1000, 0 off)
      on_deadlock=report|abort   abort leaves a core for gdb
      hold_ms=N            a lock held longer than N ms is a misuse (off)
      held_stacks=1        every acquisition's whole stack (unwinds on every lock)
  HOLDCHECK_DIR=DIR        where traces go without `run` (default /tmp/holdcheck-UID)
  HOLDCHECK_CONFIRM=PLAN   set by `confirm`: the cycle to steer toward
  HOLDCHECK_DEBUG_DIRS=dir:dir   where to look for separate debug files
  HOLDCHECK_LIB=PATH       the shim to use instead of the built-in one
  NO_COLOR                 no colour in the text report on a terminal

Without `run`: LD_PRELOAD=$(holdcheck shim-path) HOLDCHECK_DIR=/some/dir ./prog,
then `holdcheck report /some/dir`.";

#[derive(Parser)]
#[command(name = "holdcheck", version, after_long_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command under the shim and report what it did.
    #[command(after_long_help = ENVIRONMENT)]
    Run {
        /// Trace directory (must hold no traces yet); default: a new one in
        /// the temporary directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        to: Output,
        #[command(flatten)]
        controls: Controls,
        /// Seconds after which the command (and its process group) is killed
        /// and the report printed.
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        timeout: Option<Duration>,
        /// Keep the command running after the shim's watchdog saw a
        /// deadlock (a server whose deadlocked corner still serves); by
        /// default it is ended at once and reported.
        #[arg(long)]
        keep_running: bool,
        /// Run the command N times (a stress run), each with its own trace
        /// directory, and report each distinct finding once with the number
        /// of runs that showed it.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        repeat: u32,
        /// The command and its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<OsString>,
    },
    /// Diagnose a process that is hung right now, with no preload: its
    /// threads, what each is blocked in, the lock owners read from glibc's
    /// lock fields, the kernel queues between them. Read-only.
    Inspect {
        /// The process, or several: their wait-for graphs are joined
        /// through the kernel queues between them.
        #[arg(value_name = "PID", required = true)]
        pids: Vec<u32>,
        #[command(flatten)]
        to: Output,
        /// Samples of every thread; a thread that did not move between the
        /// first and the last made no progress.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=100))]
        samples: u32,
        /// Milliseconds between samples.
        #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
        interval: u64,
        /// Age in milliseconds at which a wait chain is a stall and a
        /// blocked call is shown.
        #[arg(long, default_value_t = 1000)]
        stall_ms: u64,
        /// Also take the user-space stack of every thread that made no
        /// progress: a brief ptrace stop per thread, detached at once.
        #[arg(long)]
        stacks: bool,
        #[command(flatten)]
        controls: Controls,
    },
    /// Make a predicted deadlock happen: run the command again under the
    /// shim, steering its threads to the cycle's sites (each waits there,
    /// bounded, for the others), and report the live deadlock that follows,
    /// or what the tries reached. Exit status 1 only when one is confirmed.
    Confirm {
        /// The prediction: a JSON report (`run --format json -o FILE`) or
        /// the traces of the run that made it.
        #[arg(value_name = "REPORT.json|DIR")]
        input: PathBuf,
        /// Which finding: its number among the report's potential deadlocks
        /// and lock-order inversions (from 1), or its signature; default:
        /// each in turn.
        #[arg(value_name = "FINDING")]
        finding: Option<String>,
        /// Steered runs per finding, at most (the first that deadlocks
        /// ends them).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        tries: u32,
        /// Seconds after which a try is ended (and reported).
        #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "30")]
        timeout: Duration,
        /// Milliseconds a thread waits at its site for the others, at most;
        /// three such waits at one site and it waits there no more.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
        park_ms: u64,
        /// Where the tries' traces go (an empty directory); default: a new
        /// one in the temporary directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        to: Output,
        #[command(flatten)]
        controls: Controls,
        /// The command that made the prediction, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Print the path of libholdcheck.so, for LD_PRELOAD=$(holdcheck
    /// shim-path) without `holdcheck run`.
    ShimPath,
    /// Report on the traces in one or more directories.
    Report {
        #[command(flatten)]
        to: Output,
        #[command(flatten)]
        controls: Controls,
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
}

/// Where the report goes and in which format (every command).
#[derive(clap::Args)]
struct Output {
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the report to FILE instead of standard output (which a command
    /// run shares).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    /// Graphviz DOT: one cluster per finding.
    Dot,
    /// One SVG picture of every finding's graph (no Graphviz needed).
    Svg,
    /// One self-contained HTML page with the graphs drawn in.
    Html,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// What CI adds to every command's report.
#[derive(clap::Args)]
struct Controls {
    /// Leave out findings a rule matches: lines `[kind:]fun|src|module:GLOB`.
    #[arg(long, value_name = "FILE")]
    suppressions: Option<PathBuf>,
    /// Leave out findings already in this earlier JSON report (by signature).
    #[arg(long, value_name = "REPORT.json")]
    baseline: Option<PathBuf>,
    /// Exit with status 1 on hazards too (by default a hazard, a lock held
    /// across a blocking call in no cycle, is reported but does not fail).
    #[arg(long)]
    fail_on_hazard: bool,
    /// Lock-order inversions that could not deadlock in this run (one
    /// thread took the orders, or a thread start or join ordered them):
    /// `fail` the run like a potential deadlock (the default, as TSan,
    /// Helgrind and lockdep report them), or `warn` (report only).
    #[arg(long, value_name = "fail|warn", default_value = "fail")]
    serialized_inversions: Serialized,
    /// SARIF: file locations under DIR are given relative to it
    /// (`%SRCROOT%`), as code scanning wants; default: the git top level
    /// of the current directory.
    #[arg(long, value_name = "DIR")]
    source_root: Option<PathBuf>,
}

/// What a serialized lock-order inversion does to the exit status.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Serialized {
    Fail,
    Warn,
}

/// The controls read and checked, before any command runs: a typo in a
/// file name must not cost the user a long run.
struct Loaded {
    suppressions: Option<holdcheck::report::filter::Suppressions>,
    baseline: Option<std::collections::HashSet<String>>,
    /// `--source-root`, made absolute.
    source_root: Option<PathBuf>,
}

impl Controls {
    /// Reads the suppressions and the baseline and checks the output file,
    /// before anything runs.
    fn prepare(&self, output: Option<&Path>) -> Result<Loaded> {
        let loaded = self.load()?;
        check_output(output)?;
        Ok(loaded)
    }

    fn load(&self) -> Result<Loaded> {
        use holdcheck::report::filter;
        Ok(Loaded {
            suppressions: self
                .suppressions
                .as_deref()
                .map(filter::Suppressions::load)
                .transpose()?,
            baseline: self
                .baseline
                .as_deref()
                .map(filter::load_baseline)
                .transpose()?,
            source_root: self
                .source_root
                .as_deref()
                .map(|d| {
                    std::fs::canonicalize(d)
                        .ok()
                        .filter(|d| d.is_dir())
                        .with_context(|| format!("--source-root {}: not a directory", d.display()))
                })
                .transpose()?,
        })
    }
}

impl Loaded {
    fn apply(&self, report: &mut Report) {
        holdcheck::report::filter::apply(
            report,
            self.suppressions.as_ref(),
            self.baseline.as_ref(),
        );
    }
}

/// Refuses an output file that could not be written, before the command
/// runs: its directory must exist and be writable.
fn check_output(output: Option<&Path>) -> Result<()> {
    let Some(path) = output else { return Ok(()) };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "-o {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        bail!("-o {}: cannot write in {}", path.display(), dir.display());
    }
    if path.is_dir() {
        bail!("-o {} is a directory", path.display());
    }
    Ok(())
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// The git top level of the current directory, if it is in a work tree.
fn git_top_level() -> Option<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let top = String::from_utf8(out.stdout).ok()?;
    let top = top.trim_end_matches('\n');
    (out.status.success() && !top.is_empty()).then(|| PathBuf::from(top))
}

fn print(report: &Report, to: &Output, loaded: &Loaded) -> Result<()> {
    let (format, output) = (to.format, to.output.as_deref());
    let rendered = match format {
        Format::Text => text::render(report),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Dot => holdcheck::report::graph::dot(report),
        Format::Svg => holdcheck::report::svg::svg(report).map_err(anyhow::Error::msg)?,
        Format::Html => holdcheck::report::html::render(report),
        Format::Sarif => {
            let root = loaded.source_root.clone().or_else(git_top_level);
            let options = holdcheck::report::sarif::Options {
                source_root: root.as_deref(),
            };
            holdcheck::report::sarif::render(report, &options)
        }
    };
    match output {
        Some(path) => {
            std::fs::write(path, rendered)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // The report went to a file: the verdict still shows here.
            eprintln!(
                "{}holdcheck: report written to {}",
                text::summary_line(report),
                path.display()
            );
        }
        None => {
            use std::io::IsTerminal;
            // Colour on a terminal, unless NO_COLOR (no-color.org) says no.
            let colour = matches!(format, Format::Text)
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let rendered = if colour {
                text::coloured(&rendered)
            } else {
                rendered
            };
            std::io::stdout().write_all(rendered.as_bytes())?
        }
    }
    Ok(())
}

/// 1 when the report has a finding that fails a CI run: a deadlock, a
/// potential deadlock, a lock-order inversion (unless
/// `--serialized-inversions warn`), a stall, a misuse or a stalled call; a
/// hazard only with `--fail-on-hazard`.
fn status(report: &Report, controls: &Controls) -> i32 {
    let s = &report.summary;
    let failing = s.total()
        - if controls.fail_on_hazard { 0 } else { s.hazard }
        - if controls.serialized_inversions == Serialized::Warn {
            s.lock_order_inversion
        } else {
            0
        };
    if failing > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

/// Traces in a directory of holdcheck's choosing do not pile up unseen in
/// the temporary directory: a run with nothing to look at again (no
/// finding, no warning) removes them; otherwise it says where they are and
/// how to read them again. A directory given with `--out` is the user's.
fn tidy_traces(report: &Report, given_dir: bool) {
    let Some(dir) = report.run.as_ref().map(|r| PathBuf::from(&r.trace_dir)) else {
        return;
    };
    if given_dir {
        return;
    }
    let nothing = report.findings.is_empty()
        && report.suppressed + report.baselined == 0
        && report.warnings.is_empty()
        && report.untraced.is_empty();
    if nothing && std::fs::remove_dir_all(&dir).is_ok() {
        eprintln!("holdcheck: nothing found; its traces are removed (--out DIR keeps them)");
    } else {
        eprintln!(
            "holdcheck: traces kept in {0}: `holdcheck report {0}` reads them again, `rm -r {0}` removes them",
            dir.display()
        );
    }
}

/// Runs the command once under the shim and analyses its traces.
fn run_once(opts: &RunOptions, say: bool) -> Result<(Report, run::Ending)> {
    let outcome = run::run(opts)?;
    if say {
        eprintln!("holdcheck: the command {}", outcome.ending);
    }
    if trace::trace_files(&outcome.dir)?.is_empty() {
        bail!(
            "the shim wrote no trace: it did not load in {} (a static or set-uid program ignores LD_PRELOAD)",
            opts.command[0].to_string_lossy()
        );
    }
    let mut report = analyse_dirs(std::slice::from_ref(&outcome.dir)).with_context(|| {
        format!(
            "the traces are kept in {0}; once the cause is fixed, `holdcheck report {0}` \
             gives the report",
            outcome.dir.display()
        )
    })?;
    let (ending, code) = outcome.ending.info();
    report.run = Some(RunInfo {
        command: opts
            .command
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect(),
        trace_dir: outcome.dir.display().to_string(),
        ending: ending.to_string(),
        code,
        repeat: None,
    });
    Ok((report, outcome.ending))
}

fn main_result(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Run {
            out,
            to,
            controls,
            timeout,
            keep_running,
            repeat,
            command,
        } => {
            let given_dir = out.is_some();
            let opts = RunOptions {
                command,
                out,
                timeout,
                keep_running,
                output: None,
                env: Vec::new(),
                released: None,
            };
            let loaded = controls.prepare(to.output.as_deref())?;
            let mut report = if repeat > 1 {
                holdcheck::repeat::repeat(&opts, repeat, |o| run_once(o, false))?
            } else {
                run_once(&opts, true)?.0
            };
            loaded.apply(&mut report);
            print(&report, &to, &loaded)?;
            tidy_traces(&report, given_dir);
            Ok(status(&report, &controls))
        }
        Cmd::Inspect {
            pids,
            to,
            samples,
            interval,
            stall_ms,
            stacks,
            controls,
        } => {
            let loaded = controls.prepare(to.output.as_deref())?;
            let mut report = holdcheck::inspect::inspect(&holdcheck::inspect::Options {
                pids,
                samples,
                interval: Duration::from_millis(interval),
                stall_ms,
                stacks,
                ending: None,
            })?;
            loaded.apply(&mut report);
            print(&report, &to, &loaded)?;
            Ok(status(&report, &controls))
        }
        Cmd::Confirm {
            input,
            finding,
            tries,
            timeout,
            park_ms,
            out,
            to,
            controls,
            command,
        } => {
            use holdcheck::confirm;
            let loaded = controls.prepare(to.output.as_deref())?;
            let mut predicted = confirm::predictions(&input)?;
            loaded.apply(&mut predicted);
            let targets = confirm::targets(&predicted, finding.as_deref())?;
            if targets.is_empty() {
                eprintln!(
                    "holdcheck: {} holds no potential deadlock or lock-order inversion to confirm{}",
                    input.display(),
                    if predicted.suppressed + predicted.baselined > 0 {
                        " (after the suppressions and the baseline)"
                    } else {
                        ""
                    }
                );
                return Ok(EXIT_CLEAN);
            }
            let report = confirm::confirm(
                &confirm::Options {
                    command,
                    tries,
                    timeout,
                    park_ms,
                    out,
                },
                targets,
            )?;
            print(&report, &to, &loaded)?;
            let confirmed = report.findings.iter().any(|f| {
                f.confirmation
                    .as_ref()
                    .is_some_and(|c| c.reproduced_in.is_some())
            });
            Ok(if confirmed { EXIT_FINDINGS } else { EXIT_CLEAN })
        }
        Cmd::ShimPath => {
            println!("{}", holdcheck::shim::locate()?.display());
            Ok(EXIT_CLEAN)
        }
        Cmd::Report { to, controls, dirs } => {
            let loaded = controls.prepare(to.output.as_deref())?;
            let mut report = analyse_dirs(&dirs)?;
            loaded.apply(&mut report);
            print(&report, &to, &loaded)?;
            Ok(status(&report, &controls))
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match main_result(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("holdcheck: error: {e:#}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
