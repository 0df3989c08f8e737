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
    let work = work_dir(name);
    let out = work.join(name);
    let exe = examples().join(example);
    let mut argv = vec![
        "run",
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
        "--timeout",
        "60",
        "--",
        exe.to_str().unwrap(),
    ];
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

fn chromium() -> PathBuf {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "{} not found: install Debian's chromium (apt-get install chromium), or set CHROMIUM",
        p.display()
    );
    p
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
    pixels(png_file, |p| p[0] >= 240 && p[1] <= 60 && p[2] <= 60)
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
    let pic = report_file("rpc_callback", &["--light"], "svg", "rpc.svg");
    let svg = std::fs::read_to_string(&pic).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(!svg[5..].contains("<?xml"), "one document");
    for label in ["mutex 0x", "unix socket inode", "rpc-server", "cb-handler"] {
        assert!(svg.contains(label), "{label}: {svg}");
    }
    let (shot, _) = open_in_browser(&pic);
    assert!(red_pixels(&shot) > 100, "the cycle is drawn");
}
