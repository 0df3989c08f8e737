//! Builds the shim (libholdcheck.so) into a target directory of its own and
//! leaves it in OUT_DIR, so the holdcheck binary can embed it and work
//! alone. (Cargo's artifact dependencies would do this, but are unstable.)

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("analyzer/ is inside the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = out.join("shim-target");
    let release = env::var("PROFILE").as_deref() == Ok("release");

    for p in [
        "shim/src",
        "shim/Cargo.toml",
        "format/src",
        "format/Cargo.toml",
        "waitfor/src",
        "waitfor/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }

    if env::var_os("CARGO_CFG_FUZZING").is_some() {
        // Under cargo fuzz (fuzz/): the fuzz targets read traces and never
        // start a program, so no shim is embedded.
        std::fs::write(out.join("libholdcheck.so"), b"").expect("cannot write to OUT_DIR");
        return;
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(root.join("shim/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--lib")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cannot run cargo to build the shim");
    assert!(
        status.success(),
        "building the shim (libholdcheck.so) failed"
    );
    let built = target_dir
        .join(if release { "release" } else { "debug" })
        .join("libholdcheck.so");
    std::fs::copy(&built, out.join("libholdcheck.so")).expect("cannot copy the built shim");
}
