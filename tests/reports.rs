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
