//! Build script: records the git revision and the compiler version for the
//! `collector_build_info` self-metric. Either is left out when it cannot be found (a build
//! from a source archive, an unusual toolchain); the build never fails for it.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    // Rerun when the collector's sources change (a new revision, as far as this crate goes).
    println!("cargo:rerun-if-env-changed=COLLECTOR_REVISION");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    // An explicit revision (a CI build of a tarball) wins over asking git.
    let revision = std::env::var("COLLECTOR_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]));
    if let Some(rev) = revision {
        println!("cargo:rustc-env=COLLECTOR_REVISION={rev}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.95.0 (hash date)" → "1.95.0".
    if let Some(version) =
        output(&rustc, &["--version"]).and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
    {
        println!("cargo:rustc-env=COLLECTOR_RUSTC={version}");
    }
}
