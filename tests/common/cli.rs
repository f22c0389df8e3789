//! Running the `wgfit` binary in tests: one command builder and runner for every CLI test.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The `wgfit` binary, with XDG_RUNTIME_DIR set (quiets lavapipe) and no backtraces in its errors.
pub fn wgfit() -> Command {
    let mut c = Command::cargo_bin("wgfit").expect("the wgfit binary is built");
    c.env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    c.env_remove("RUST_BACKTRACE");
    c
}

/// A dataset shipped in the repository's `data/`.
pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = wgfit().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
