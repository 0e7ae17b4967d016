//! The command line's output when its reader goes away (`purser plan ... | head`): a quiet exit,
//! never a panic.

use std::process::{Command, Stdio};

/// Run `purser` with `args`, close the reading end of its standard output at once, and return
/// its exit code and standard error.
fn closed_reader(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_purser"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("purser starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("purser ends");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn plan_exits_quietly_when_the_reader_has_gone() {
    let (code, stderr) = closed_reader(&["plan", "-f", "examples/cluster.yaml", "-o", "json"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn simulate_exits_quietly_when_the_reader_has_gone() {
    let (code, stderr) = closed_reader(&["simulate", "--scenario", "quickstart", "--duration", "2h"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
