//! Records the commit the binary is built from, for `--version` and the
//! `fleetgate_build_info` metric: `FLEETGATE_COMMIT` if set (a build from
//! a source tarball or a package), else `git rev-parse`, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLEETGATE_COMMIT");
    let commit = std::env::var("FLEETGATE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FLEETGATE_COMMIT={commit}");
}

/// The short commit of the checkout, with `-dirty` when files differ from
/// it; `None` outside a git checkout.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let dir = git(&["rev-parse", "--git-dir"])?;
    // Rebuild when HEAD moves (a commit, a checkout).
    println!("cargo:rerun-if-changed={dir}/HEAD");
    println!("cargo:rerun-if-changed={dir}/index");
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
