//! End to end: the Debian package. `scripts/package-deb.sh` packages the
//! built binary with `dpkg-deb`; the package holds what an operator needs
//! (binary, unit, logrotate, example configuration, dashboard, docs), the
//! unit runs the packaged binary, and the binary in it reports its commit.
//! (CI packages the debug binary to save a release build; the dist
//! profile is the same code, optimised and stripped.)

use std::path::Path;
use std::process::Command;

use fleetgate_e2e::{bin_path, fleetgate_cli, TempDir};

#[test]
fn the_deb_package_holds_binary_unit_config_and_docs() {
    let dir = TempDir::new("deb");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/package-deb.sh"))
        .arg("--binary")
        .arg(bin_path("fleetgate"))
        .arg("--out")
        .arg(dir.path())
        // The debug binary is large; xz would take a minute and a half.
        .args(["--compression", "none"])
        .output()
        .expect("run package-deb.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");

    let info = Command::new("dpkg-deb")
        .args(["--info", &deb])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    for field in [
        "Package: fleetgate",
        "Version: 0.",
        "Depends: libc6, adduser",
    ] {
        assert!(info.contains(field), "{field} missing:\n{info}");
    }
    let contents = Command::new("dpkg-deb")
        .args(["--contents", &deb])
        .output()
        .unwrap();
    let contents = String::from_utf8_lossy(&contents.stdout);
    for file in [
        "./usr/bin/fleetgate",
        "./lib/systemd/system/fleetgate.service",
        "./etc/logrotate.d/fleetgate",
        "./usr/share/doc/fleetgate/examples/fleetgate.toml",
        "./usr/share/doc/fleetgate/examples/seed/ingress-demo.yaml",
        "./usr/share/doc/fleetgate/grafana/fleetgate-dashboard.json",
        "./usr/share/doc/fleetgate/docs/configuration.md",
        "./usr/share/doc/fleetgate/docs/operations.md",
        "./usr/share/doc/fleetgate/README.md",
    ] {
        assert!(contents.contains(file), "{file} missing:\n{contents}");
    }
    assert!(
        contents.contains("root/root"),
        "files owned by root:\n{contents}"
    );

    let unpacked = dir.path().join("root");
    let x = Command::new("dpkg-deb")
        .args(["-x", &deb])
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(x.success());
    let unit =
        std::fs::read_to_string(unpacked.join("lib/systemd/system/fleetgate.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/fleetgate run"), "{unit}");
    assert!(!unit.contains("/usr/local/bin"), "{unit}");
    let packaged = Command::new(unpacked.join("usr/bin/fleetgate"))
        .arg("--version")
        .output()
        .unwrap();
    let (_, built) = fleetgate_cli(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&packaged.stdout), built);
    assert!(built.contains("(commit "), "{built}");
    // The example configuration in the package checks as it is.
    let example = unpacked.join("usr/share/doc/fleetgate/examples/fleetgate.toml");
    let (code, text) = fleetgate_cli(&["check", "-c", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}
