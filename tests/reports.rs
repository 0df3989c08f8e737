//! End-to-end tests of the report formats as their consumers see them: the
//! SARIF against the OASIS SARIF 2.1.0 schema, the HTML page in a real
//! headless browser (Debian's `chromium`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

/// `holdcheck run --format FMT -o FILE` on an example; returns FILE.
fn report_file(example: &str, args: &[&str], format: &str, name: &str) -> PathBuf {
    report_file_with(example, args, format, name, &[])
}

/// The same with more options of `run` (before the command).
fn report_file_with(
    example: &str,
    args: &[&str],
    format: &str,
    name: &str,
    options: &[&str],
) -> PathBuf {
    let work = work_dir(name);
    let out = work.join(name);
    let exe = examples().join(example);
    let mut argv = vec!["run", "--format", format, "-o", out.to_str().unwrap()];
    argv.extend_from_slice(options);
    argv.extend_from_slice(&["--timeout", "60", "--", exe.to_str().unwrap()]);
    argv.extend_from_slice(args);
    let (code, _, err) = holdcheck(&argv, Duration::from_secs(120));
    assert_eq!(code, 1, "{example} has a finding: {err}");
    out
}

/// Runs the SARIF validator on files: its exit status and output.
fn validate_sarif(files: &[&Path]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/validate_sarif.py");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sarif-schema");
    let out = Command::new("python3")
        .arg(script)
        .arg(cache)
        .args(files)
        .output()
        .expect("python3 runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{text}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn sarif_reports_validate_against_the_sarif_2_1_0_schema() {
    if !need("python3", "python3") || !need_python_module("jsonschema", "pip install jsonschema") {
        return;
    }
    let one = report_file("warnd", &["--light"], "sarif", "warnd.sarif");
    let two = report_file("rpc_callback", &["--light"], "sarif", "rpc.sarif");
    let (code, text) = validate_sarif(&[&one, &two]);
    assert_eq!(code, 0, "{text}");

    // The validator does reject a broken log.
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&one).unwrap()).unwrap();
    broken["runs"][0]["results"][0]["locations"] = serde_json::json!("nowhere");
    let bad = one.with_extension("broken.sarif");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let (code, text) = validate_sarif(&[&bad]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("locations"), "{text}");
}

/// `holdcheck run --format sarif --source-root ROOT` on an example, parsed.
fn sarif_of(example: &str, args: &[&str], root: &Path, name: &str) -> serde_json::Value {
    let root = ["--source-root", root.to_str().unwrap()];
    let out = report_file_with(example, args, "sarif", name, &root);
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// What GitHub code scanning requires beyond the schema (its "SARIF
/// support" page): a rule for every result, each result one located
/// message with a start line, file paths relative to `%SRCROOT%` (defined),
/// fingerprints, and the limits on locations and thread flow locations.
fn assert_code_scanning_accepts(sarif: &serde_json::Value) {
    let run = &sarif["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(
                r["fullDescription"]["text"]
                    .as_str()
                    .is_some_and(|t| t.len() > 40),
                "{r}"
            );
            assert!(
                r["help"]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{r}"
            );
            assert!(r["shortDescription"]["text"].as_str().unwrap().len() <= 1024);
            r["id"].as_str().unwrap()
        })
        .collect();
    assert!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap()
        .ends_with('/'));
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(rules.contains(&r["ruleId"].as_str().unwrap()), "{r}");
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        assert!(r["partialFingerprints"]["holdcheck/v1"].as_str().is_some());
        let locs = r["locations"].as_array().unwrap();
        assert_eq!(locs.len(), 1, "{r}");
        let mut all: Vec<&serde_json::Value> = locs.iter().collect();
        all.extend(r["relatedLocations"].as_array().into_iter().flatten());
        assert!(all.len() <= 1000);
        let mut flow_locations = 0;
        for f in r["codeFlows"].as_array().into_iter().flatten() {
            for tf in f["threadFlows"].as_array().unwrap() {
                let l = tf["locations"].as_array().unwrap();
                assert!(!l.is_empty());
                flow_locations += l.len();
                all.extend(l.iter().map(|x| &x["location"]));
            }
        }
        assert!(flow_locations <= 10_000);
        for l in all {
            let a = &l["physicalLocation"]["artifactLocation"];
            let uri = a["uri"].as_str().unwrap();
            assert!(
                l["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .unwrap()
                    >= 1
            );
            if a["uriBaseId"].is_null() {
                assert!(
                    uri.starts_with("file:///"),
                    "outside the tree: absolute {uri}"
                );
            } else {
                assert_eq!(a["uriBaseId"], "%SRCROOT%");
                assert!(!uri.starts_with('/') && !uri.contains("://"), "{uri}");
            }
        }
    }
}

/// The demo's SARIF is what code scanning shows: relative paths, a code
/// flow per finding (a thread flow per thread, with its acquisitions and
/// the blocking call), linked sites, rule help; and two runs give the same
/// results (no address, tid, pid or port in a message), so an alert is
/// matched from run to run.
#[test]
fn the_demo_sarif_is_stable_across_runs_and_fit_for_code_scanning() {
    let root = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap();
    let one = sarif_of("warnd", &["--light"], &root, "one.sarif");
    let two = sarif_of("warnd", &["--light"], &root, "two.sarif");
    assert_code_scanning_accepts(&one);
    assert_eq!(
        serde_json::to_string_pretty(&one["runs"][0]["results"]).unwrap(),
        serde_json::to_string_pretty(&two["runs"][0]["results"]).unwrap(),
        "two runs, two different SARIF results"
    );
    let r = &one["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "potential-deadlock");
    let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert_eq!(uri, "examples/c/warnd.c");
    let text = r["message"]["text"].as_str().unwrap();
    assert!(text.contains("rwlock alarm_lock (write)"), "{text}");
    assert!(text.contains("netlink NETLINK_USERSOCK socket"), "{text}");
    assert!(text.contains("](1)"), "links its related locations: {text}");
    assert!(!text.contains("0x") && !text.contains("port "), "{text}");
    // One thread flow per thread: the sender acquires, then blocks in
    // sendto; the receiver receives, then acquires.
    let flows = r["codeFlows"][0]["threadFlows"].as_array().unwrap();
    let of = |name: &str| -> Vec<String> {
        let tf = flows
            .iter()
            .find(|f| f["message"]["text"] == format!("thread \"{name}\""))
            .unwrap_or_else(|| panic!("no flow of {name}: {flows:#?}"));
        tf["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["location"]["message"]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let sender = of("warn-sender");
    assert_eq!(sender.len(), 2, "{sender:?}");
    assert!(
        sender[0].starts_with("acquires rwlock alarm_lock"),
        "{sender:?}"
    );
    assert!(
        sender[1].starts_with("blocks in sendto() on netlink"),
        "{sender:?}"
    );
    let receiver = of("nl-receiver");
    assert!(
        receiver
            .iter()
            .any(|s| s.contains("then acquires rwlock alarm_lock")),
        "{receiver:?}"
    );
    // The ABBA's inversion too: a code flow of two threads.
    let abba = sarif_of("abba", &["--heap"], &root, "abba.sarif");
    assert_code_scanning_accepts(&abba);
    let r = &abba["runs"][0]["results"][0];
    assert_eq!(
        r["codeFlows"][0]["threadFlows"].as_array().unwrap().len(),
        2
    );
    let text = r["message"]["text"].as_str().unwrap();
    assert!(!text.contains("0x"), "{text}");
}

/// The lines a terminal shows after `raw`: `\r` goes back to the line's
/// start, `ESC [2K` clears the line, text overwrites.
fn terminal_lines(raw: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in raw.split('\n') {
        let mut shown: Vec<char> = Vec::new();
        let mut col = 0;
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("\x1b[2K") {
                shown.clear();
                rest = r;
                continue;
            }
            let c = rest.chars().next().unwrap();
            rest = &rest[c.len_utf8()..];
            if c == '\r' {
                col = 0;
            } else {
                if col < shown.len() {
                    shown[col] = c;
                } else {
                    shown.push(c);
                }
                col += 1;
            }
        }
        lines.push(shown.into_iter().collect::<String>().trim_end().to_string());
    }
    lines
}

/// A shell command line run on a pseudo-terminal (made by `script`), within
/// `secs` seconds, with `NO_COLOR` set as given: its exit status and what
/// the terminal received.
fn on_a_terminal(line: &str, secs: u32, no_color: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "-k",
        "5",
        &secs.to_string(),
        "script",
        "-qec",
        line,
        "/dev/null",
    ])
    .stdin(std::process::Stdio::null())
    .env("TMPDIR", tmpdir())
    .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.output().expect("script runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `run --repeat 8` on a terminal (under a pseudo-terminal made by
/// `script`): the bar is there from the start, the command's output never
/// shares its line, and the report says "of 8 runs".
#[test]
fn repeat_on_a_terminal_keeps_the_bar_apart_from_the_program_output() {
    if !need("script", "bsdutils (script)") {
        return;
    }
    let exe = examples().join("abba");
    let line = format!("{} run --repeat 8 -- {}", holdcheck_bin(), exe.display());
    let (code, raw) = on_a_terminal(&line, 180, None);
    let raw = raw.replace("\r\n", "\n");
    assert_eq!(code, Some(1), "{raw}");
    // Shown from the start: the empty bar comes before the first output.
    let first_bar = raw.find("0/8 runs").expect("an empty bar first");
    let first_output = raw.find("abba: done").expect("the command's output");
    assert!(first_bar < first_output, "{raw:?}");
    let shown = terminal_lines(&raw);
    let outputs = shown.iter().filter(|l| l.contains("abba: done")).count();
    assert_eq!(outputs, 8, "{shown:#?}");
    for l in &shown {
        assert!(
            !(l.contains("abba: done") && l.contains("runs,")),
            "output glued onto the bar: {l:?}"
        );
    }
    assert!(
        shown
            .iter()
            .any(|l| l.contains("] 8/8 runs, 1 distinct finding")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|l| l.contains("(found in 8 of 8 runs)")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|l| l.starts_with(
            "holdcheck: 1 potential deadlock in 8 runs (per run: 1 process, 2 threads seen)"
        )),
        "{shown:#?}"
    );
}

/// The text report is coloured on a terminal only: not with NO_COLOR, not
/// into a pipe.
#[test]
fn text_is_coloured_on_a_terminal_unless_no_color() {
    if !need("script", "bsdutils (script)") {
        return;
    }
    let work = work_dir("colour");
    let traces = work.join("t");
    let exe = examples().join("abba");
    let (code, piped, _) = holdcheck(
        &[
            "run",
            "--out",
            traces.to_str().unwrap(),
            "--",
            exe.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(!piped.contains('\x1b'), "no colour into a pipe: {piped:?}");
    let line = format!("{} report {}", holdcheck_bin(), traces.display());
    let on_terminal = |no_color: Option<&str>| on_a_terminal(&line, 60, no_color).1;
    let coloured = on_terminal(None);
    assert!(
        coloured.contains("\x1b[1;31mWARNING: holdcheck: potential deadlock"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[0m"), "{coloured:?}");
    let plain = on_terminal(Some("1"));
    assert!(
        plain.contains("WARNING: holdcheck: potential deadlock"),
        "{plain:?}"
    );
    assert!(!plain.contains("\x1b["), "{plain:?}");
}

/// Traces in a directory holdcheck chose are removed when the run found
/// nothing, and kept, with where and how to read them, when it did.
#[test]
fn default_trace_directories_do_not_pile_up() {
    let tmp = work_dir("tmpdir");
    let run = |exe: &str| {
        let out = Command::new(holdcheck_bin())
            .args(["run", "--", exe])
            .env("TMPDIR", &tmp)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("holdcheck runs");
        let dirs: Vec<PathBuf> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("holdcheck-run-")
            })
            .collect();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            dirs,
        )
    };
    let (code, err, dirs) = run("true");
    assert_eq!(code, Some(0), "{err}");
    assert!(dirs.is_empty(), "{dirs:?} {err}");
    assert!(err.contains("its traces are removed"), "{err}");
    let abba = examples().join("abba");
    let (code, err, dirs) = run(abba.to_str().unwrap());
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(dirs.len(), 1, "{err}");
    let shown = format!("`holdcheck report {}`", dirs[0].display());
    assert!(err.contains(&shown), "{err}");
}

/// Measures the pictures of an SVG report in the browser: for each arrow,
/// how far its label's box is from its path; whether anything lies outside
/// its picture; and the widest blank margin of a picture. Printed into the
/// page as JSON, read back with `--dump-dom`.
const MEASURE: &str = r#"<script>
const out = {labels: [], overflow: [], margins: []};
for (const svg of document.querySelectorAll('svg.finding-graph')) {
  // Each element's box in the picture's own coordinates (its viewBox).
  const vb = svg.viewBox.baseVal;
  const toSvg = svg.getScreenCTM().inverse();
  let union = null;
  for (const el of svg.querySelectorAll('text, rect, path')) {
    if (el.closest('marker')) continue;
    const b = el.getBBox();
    const m = toSvg.multiply(el.getScreenCTM());
    const r = {l: b.x + m.e, t: b.y + m.f, r: b.x + b.width + m.e, b: b.y + b.height + m.f};
    if (r.l < vb.x - 1 || r.t < vb.y - 1 || r.r > vb.x + vb.width + 1 || r.b > vb.y + vb.height + 1)
      out.overflow.push(el.textContent || el.getAttribute('d'));
    union = union ? {l: Math.min(union.l, r.l), t: Math.min(union.t, r.t), r: Math.max(union.r, r.r), b: Math.max(union.b, r.b)} : r;
  }
  out.margins.push(Math.max(union.l - vb.x, union.t - vb.y, vb.x + vb.width - union.r, vb.y + vb.height - union.b));
  for (const label of svg.querySelectorAll('text.edge-label')) {
    const path = svg.querySelector('path.edge[data-edge="' + label.dataset.edge + '"]');
    const b = label.getBBox();
    const m = path.getScreenCTM().inverse().multiply(label.getScreenCTM());
    const len = path.getTotalLength();
    let best = Infinity;
    for (let i = 0; i <= 200; i++) {
      const p = path.getPointAtLength(len * i / 200);
      // The label's box in the path's coordinates (both sit in one group).
      const x0 = b.x + m.e, y0 = b.y + m.f;
      const dx = Math.max(x0 - p.x, 0, p.x - (x0 + b.width));
      const dy = Math.max(y0 - p.y, 0, p.y - (y0 + b.height));
      best = Math.min(best, Math.hypot(dx, dy));
    }
    out.labels.push([label.textContent, best]);
  }
}
const pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"#;

/// The DOM of a page after its scripts ran, as headless Chromium dumps it.
fn dumped_dom(page: &Path) -> String {
    let profile = page.with_extension("dom-profile");
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pictures of a 2-cycle, a 5-cycle, a self-deadlock and a stall, drawn
/// in headless Chromium: each label within a few pixels of its own arrow,
/// nothing outside its picture, no wide blank margin; a cycle is a ring
/// (red), a stall a fan of its waiters. Screenshots stay in the test's
/// directory (target/tmp/pictures-*).
#[test]
fn pictures_read_in_a_browser() {
    if !has_chromium() {
        return;
    }
    let work = work_dir("pictures");
    let cases: [(&str, &[&str], &str); 4] = [
        ("abba", &["--heap"], ""),
        ("lockorder", &["ring", "5"], ""),
        ("relock", &[], ""),
        ("rwlock_stall", &[], "stall_ms=1000"),
    ];
    let mut pictures = String::new();
    for (example, args, options) in cases {
        let out = work.join(format!("{example}.svg"));
        let exe = examples().join(example);
        let mut argv = vec!["run", "--format", "svg", "-o", out.to_str().unwrap()];
        argv.extend_from_slice(&["--timeout", "8", "--", exe.to_str().unwrap()]);
        argv.extend_from_slice(args);
        let (code, _, err) = holdcheck_with(&argv, Duration::from_secs(120), options);
        assert_eq!(code, 1, "{example}: {err}");
        let svg = std::fs::read_to_string(&out).unwrap();
        let (shot, _) = open_in_browser(&out);
        assert!(ink(&shot) > 2000, "{example}: the picture is drawn");
        pictures.push_str(&format!("<h2>{example}</h2>\n{svg}\n"));
        match example {
            "lockorder" => {
                assert_eq!(svg.matches("class=\"edge-label\"").count(), 5, "{svg}");
                assert!(red_pixels(&shot) > 200, "{example}: a red ring");
            }
            "rwlock_stall" => {
                assert!(
                    svg.contains("class=\"thread\""),
                    "the waiters fan in: {svg}"
                );
                assert!(svg.contains("wait for it"), "{svg}");
            }
            "relock" => assert!(svg.contains("waits for it again"), "{svg}"),
            _ => assert_eq!(svg.matches("class=\"edge-label\"").count(), 2, "{svg}"),
        }
    }
    let page = work.join("pictures.html");
    std::fs::write(
        &page,
        format!("<!DOCTYPE html><html><body>{pictures}{MEASURE}</body></html>"),
    )
    .unwrap();
    let dom = dumped_dom(&page);
    let json = dom
        .split("<pre id=\"measured\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no measurement: {dom}"));
    let m: serde_json::Value = serde_json::from_str(&json.replace("&quot;", "\"")).unwrap();
    let labels = m["labels"].as_array().unwrap();
    assert_eq!(labels.len(), 2 + 5 + 1 + 1, "{m}");
    for l in labels {
        let d = l[1].as_f64().unwrap();
        assert!(d <= 10.0, "label {} is {d:.1} px from its arrow", l[0]);
    }
    assert_eq!(
        m["overflow"],
        serde_json::json!([]),
        "drawn outside its picture"
    );
    for margin in m["margins"].as_array().unwrap() {
        assert!(
            margin.as_f64().unwrap() <= 20.0,
            "a blank margin of {margin} px"
        );
    }
}

/// Whether the browser is there (else the test is skipped, see `need`).
fn has_chromium() -> bool {
    need(chromium().to_str().unwrap(), "chromium, or set CHROMIUM")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Opens a page in headless Chromium: a screenshot and the network log.
fn open_in_browser(page: &Path) -> (PathBuf, PathBuf) {
    let shot = page.with_extension("png");
    let netlog = page.with_extension("netlog.json");
    let profile = page.with_extension("profile");
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-domain-reliability",
            "--window-size=1200,4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (shot, netlog)
}

/// The pixels of a screenshot that match `keep`.
fn pixels(png_file: &Path, keep: impl Fn(&[u8]) -> bool) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| keep(p))
        .count()
}

/// Pixels of the red the graph draws a cycle's edges in.
fn red_pixels(png_file: &Path) -> usize {
    pixels(png_file, |p| p[0] >= 200 && p[1] <= 60 && p[2] <= 60)
}

/// Pixels that are not (nearly) white: whatever is drawn.
fn ink(png_file: &Path) -> usize {
    pixels(png_file, |p| p[..3].iter().any(|&c| c < 200))
}

/// The URLs the page itself requested (the browser's own background
/// requests to its vendor's services are left out).
fn page_requests(netlog: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(netlog).unwrap_or_default();
    let browser_own = ["google.com/", "gvt1.com/", "googleapis.com/"];
    log.split("\"url\":\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|u| u.starts_with("http") || u.starts_with("ws"))
        .filter(|u| !browser_own.iter().any(|h| u.contains(h)))
        .map(String::from)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn the_html_report_renders_its_graph_in_a_browser_and_fetches_nothing() {
    if !has_chromium() {
        return;
    }
    let page = report_file("warnd", &["--light"], "html", "warnd.html");
    let (shot, netlog) = open_in_browser(&page);
    let fetched = page_requests(&netlog);
    assert!(fetched.is_empty(), "the page fetched {fetched:?}");

    // Controls: the same page without its graphs has no red edges, and a
    // page that does fetch something is caught.
    let html = std::fs::read_to_string(&page).unwrap();
    let mut bare = String::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<svg") {
        bare.push_str(&rest[..start]);
        let end = rest[start..].find("</svg>").expect("closed svg") + start + 6;
        rest = &rest[end..];
    }
    bare.push_str(rest);
    let bare_page = page.with_file_name("bare.html");
    std::fs::write(&bare_page, bare).unwrap();
    let (bare_shot, _) = open_in_browser(&bare_page);
    let (with, without) = (ink(&shot), ink(&bare_shot));
    assert!(
        with > without + 3000,
        "the graph is drawn: {with} pixels of ink with it, {without} without"
    );
    assert!(red_pixels(&shot) > 0, "the cycle's edges are red");

    let fetching = page.with_file_name("fetching.html");
    std::fs::write(
        &fetching,
        "<html><body><img src=\"http://example.invalid/x.png\"></body></html>",
    )
    .unwrap();
    let (_, netlog) = open_in_browser(&fetching);
    assert_eq!(page_requests(&netlog), ["http://example.invalid/x.png"]);
}

#[test]
fn the_svg_report_is_one_picture_of_every_cycle() {
    if !has_chromium() {
        return;
    }
    let pic = report_file("rpc_callback", &["--light"], "svg", "rpc.svg");
    let svg = std::fs::read_to_string(&pic).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(!svg[5..].contains("<?xml"), "one document");
    for label in [
        "mutex registry_lock",
        "unix socket inode",
        "rpc-server",
        "cb-handler",
    ] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    let (shot, _) = open_in_browser(&pic);
    assert!(red_pixels(&shot) > 100, "the cycle is drawn");
}

/// Builds warnd, keeps its debug info apart, and strips it: (the stripped
/// program, the same with a `.gnu_debuglink` to its debug file, the debug
/// file, the build id in hex).
fn stripped_warnd(dir: &Path) -> (PathBuf, PathBuf, PathBuf, String) {
    let run = |cmd: &str, args: &[&str]| {
        let st = Command::new(cmd)
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd} {args:?}");
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c/warnd.c");
    run(
        "cc",
        &[
            "-std=gnu11",
            "-g",
            "-O1",
            "-pthread",
            "-Wl,--build-id",
            "-o",
            "warnd",
            src.to_str().unwrap(),
        ],
    );
    run("objcopy", &["--only-keep-debug", "warnd", "warnd.debug"]);
    run("strip", &["--strip-all", "-o", "warnd.bare", "warnd"]);
    run("strip", &["--strip-all", "-o", "warnd.linked", "warnd"]);
    run(
        "objcopy",
        &["--add-gnu-debuglink=warnd.debug", "warnd.linked"],
    );
    let notes = Command::new("readelf")
        .args(["-n", "warnd.bare"])
        .current_dir(dir)
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&notes.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(String::from))
        .expect("a build id");
    (
        dir.join("warnd.bare"),
        dir.join("warnd.linked"),
        dir.join("warnd.debug"),
        id,
    )
}

/// The sender's stack in the JSON report of a warnd run, as text.
fn sender_frames(program: &Path, debug_dirs: &str) -> Vec<String> {
    let work = work_dir("stripped");
    let traces = work.join("t");
    let (code, _, err) = holdcheck(
        &[
            "run",
            "--out",
            traces.to_str().unwrap(),
            "--",
            program.to_str().unwrap(),
            "--light",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    let out = Command::new(holdcheck_bin())
        .args(["report", "--format", "json", traces.to_str().unwrap()])
        .env("HOLDCHECK_DEBUG_DIRS", debug_dirs)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &r["findings"][0];
    let e = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .unwrap();
    f["stacks"][e["stack"].as_u64().unwrap() as usize]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fr| {
            match (
                fr["function"].as_str(),
                fr["module"].as_str(),
                fr["offset"].as_str(),
            ) {
                (Some(func), _, _) => func.to_string(),
                (None, Some(m), Some(o)) => format!("{m}+{o}"),
                _ => fr["pc"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

#[test]
fn stripped_programs_show_module_offsets_or_use_their_separate_debug_files() {
    let dir = work_dir("strip");
    let (bare, linked, debug, id) = stripped_warnd(&dir);
    let nowhere = dir.join("no-debug-dir");

    // Stripped, no debug file anywhere: module+offset, never a wrong name.
    let frames = sender_frames(&bare, nowhere.to_str().unwrap());
    let first = &frames[0];
    assert!(first.contains("warnd.bare+0x"), "{frames:?}");
    assert!(!frames.iter().any(|f| f == "send_warn"));

    // A debug link next to the program: names again.
    let frames = sender_frames(&linked, nowhere.to_str().unwrap());
    assert!(frames.contains(&"send_warn".to_string()), "{frames:?}");

    // A debug file under .build-id in a debug directory.
    let ids = dir.join("debug/.build-id").join(&id[..2]);
    std::fs::create_dir_all(&ids).unwrap();
    std::fs::copy(&debug, ids.join(format!("{}.debug", &id[2..]))).unwrap();
    let frames = sender_frames(&bare, dir.join("debug").to_str().unwrap());
    assert!(frames.contains(&"send_warn".to_string()), "{frames:?}");
    assert!(frames.contains(&"raise_alarm".to_string()), "{frames:?}");
}

/// A bad -o, --suppressions or --baseline is refused before the command
/// runs (it never starts); a good -o still gives the verdict on stderr.
#[test]
fn bad_output_options_are_refused_before_the_command_runs() {
    let work = work_dir("bad-options");
    let marker = work.join("ran");
    let touch = format!("touch {}", marker.display());
    let missing = work.join("missing");
    let bad_baseline = work.join("bad.json");
    std::fs::write(&bad_baseline, "{}").unwrap();
    let cases: [(&str, String); 3] = [
        ("-o", missing.join("r.json").display().to_string()),
        ("--suppressions", missing.display().to_string()),
        ("--baseline", bad_baseline.display().to_string()),
    ];
    for (flag, value) in &cases {
        let (code, _, stderr) = holdcheck(
            &["run", flag, value, "--", "sh", "-c", &touch],
            Duration::from_secs(30),
        );
        assert_eq!(code, 2, "{flag} {value}: {stderr}");
        assert!(!marker.exists(), "{flag} {value}: the command ran");
    }
    let out = work.join("r.json");
    let (code, stdout, stderr) = holdcheck(
        &["run", "-o", out.to_str().unwrap(), "--", "sh", "-c", &touch],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(marker.exists());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("holdcheck: no findings in "), "{stderr}");
}

/// `inspect` in SARIF and HTML keeps the per-thread overview the text has:
/// every thread with its state and wait, and the queues. The SARIF still
/// validates.
#[test]
fn inspect_sarif_and_html_keep_the_thread_overview() {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(examples().join("rwlock_stall"))
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let pid = child.id().to_string();
    let work = work_dir("inspect-formats");
    let sarif = work.join("r.sarif");
    let html = work.join("r.html");
    let (c1, _, e1) = holdcheck(
        &[
            "inspect",
            "--format",
            "sarif",
            "-o",
            sarif.to_str().unwrap(),
            &pid,
        ],
        Duration::from_secs(60),
    );
    let (c2, _, e2) = holdcheck(
        &[
            "inspect",
            "--format",
            "html",
            "-o",
            html.to_str().unwrap(),
            &pid,
        ],
        Duration::from_secs(60),
    );
    // SAFETY: killing our own child's process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    assert_eq!((c1, c2), (1, 1), "{e1}{e2}");

    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let overview = &log["runs"][0]["properties"]["holdcheck/inspect"];
    let tasks = overview["tasks"].as_array().expect("the threads");
    assert_eq!(tasks.len(), 6, "{overview:#}");
    let holder = tasks.iter().find(|t| t["name"] == "slow-holder").unwrap();
    assert!(
        holder["blocked_in"].as_str().unwrap().starts_with("read()"),
        "{holder}"
    );
    assert!(holder["wchan"].is_string(), "{holder}");
    assert!(
        overview["queues"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("pipe inode"),
        "{overview:#}"
    );

    let page = std::fs::read_to_string(&html).unwrap();
    let threads = page
        .split("<table id=\"threads\">")
        .nth(1)
        .expect("the thread table")
        .split("</table>")
        .next()
        .unwrap();
    assert_eq!(threads.matches("<tr><td>").count(), 6, "{threads}");
    assert!(
        threads.contains("slow-holder") && threads.contains("read() on pipe"),
        "{threads}"
    );
    assert!(page.contains("<table id=\"queues\">"), "{page}");

    if need("python3", "python3") && need_python_module("jsonschema", "pip install jsonschema") {
        let (code, text) = validate_sarif(&[&sarif]);
        assert_eq!(code, 0, "{text}");
    }
}
