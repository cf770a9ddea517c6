//! Kernel-probe tests (`tests/kernel/*.test`: kprobe, kretprobe, kfunc),
//! run inside a VM booted with a kernel that has what this machine's kernel
//! lacks: Debian's `linux-image-amd64` (kprobes, BPF trampolines, BTF),
//! under qemu through virtme-ng, on the host's own file system. One boot
//! runs every case: this test binary starts again inside the VM (with
//! `IN_VM` set), runs the suite with the golden harness, and writes its
//! report where the host reads it.
//!
//! `make test-kernel` runs this alone. Without a VM (no qemu, virtme-ng or
//! kernel image) the test says why and skips; under `CI=true` that fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set inside the VM: run the suite instead of booting.
const IN_VM: &str = "RTRACE_KERNEL_TEST_IN_VM";
/// A whole boot and run may take this long (software emulation is slow).
const VM_TIMEOUT: Duration = Duration::from_secs(900);

/// Where the VM writes: the only host directory it may change.
fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-vm")
}

fn report_file() -> PathBuf {
    shared_dir().join("report.txt")
}

#[test]
fn kernel() {
    if std::env::var_os(IN_VM).is_some() {
        return run_inside();
    }
    if !common::require_root("the kernel-probe tests (they boot a VM and load eBPF programs)") {
        return;
    }
    let vm = match Vm::find() {
        Ok(vm) => vm,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the kernel-probe tests cannot boot a VM ({why}); under CI=true that is a failure: `make setup` installs qemu-system-x86, linux-image-amd64, busybox-static and virtme-ng"
            );
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED: the kernel-probe tests: {why}");
            return;
        }
    };
    let dir = shared_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = vm.run_self(&dir);
    let report = std::fs::read_to_string(report_file())
        .unwrap_or_else(|_| panic!("the VM wrote no report; its console:\n{}", log));
    print!("{}", report);
    let (first, rest) = report.split_once('\n').unwrap_or((&report, ""));
    assert!(first.starts_with("passed ") && rest.trim().is_empty(), "kernel-probe cases failed in the VM:\n{}", report);
}

/// Inside the VM: the suite, with its report written for the host.
fn run_inside() {
    let summary = common::golden::run_suite("kernel");
    let mut report = format!("passed {}, failed {}\n", summary.passed, summary.failures.len());
    for f in &summary.failures {
        report.push_str(f);
        report.push('\n');
    }
    if summary.passed == 0 && summary.failures.is_empty() && !summary.filtered {
        report.push_str("no cases ran\n");
    }
    std::fs::write(report_file(), report).expect("write the report");
}

/// What booting needs: virtme-ng and a kernel image with kprobes.
struct Vm {
    vng: PathBuf,
    kernel: PathBuf,
}

impl Vm {
    fn find() -> Result<Vm, String> {
        let vng = which("vng").ok_or("virtme-ng (`vng`) is not installed")?;
        which("qemu-system-x86_64").ok_or("qemu-system-x86 is not installed")?;
        let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
            .map_err(|e| format!("cannot read /boot: {e}"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with("-amd64"))
            })
            .collect();
        kernels.sort();
        let kernel = kernels.pop().ok_or("no Debian kernel image (/boot/vmlinuz-*-amd64: linux-image-amd64)")?;
        Ok(Vm { vng, kernel })
    }

    /// Boots, runs this test binary inside with `IN_VM`, and returns the
    /// console output.
    fn run_self(&self, dir: &Path) -> String {
        let exe = std::env::current_exe().unwrap();
        let script = dir.join("run.sh");
        // Passed on in the script: the VM starts with a fresh environment.
        let mut env = String::new();
        for key in ["RTRACE_TEST_FILTER", "RTRACE_BIN", "PATH"] {
            if let Ok(v) = std::env::var(key) {
                env.push_str(&format!("export {}='{}'\n", key, v.replace('\'', "'\\''")));
            }
        }
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n{env}export {IN_VM}=1\ncd '{}'\nexec '{}' --exact kernel --nocapture --test-threads 1 > '{}' 2>&1\n",
                env!("CARGO_MANIFEST_DIR"),
                exe.display(),
                dir.join("inside.log").display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
        let started = Instant::now();
        let mut child = Command::new(&self.vng)
            .arg("--disable-kvm")
            .arg("--run")
            .arg(&self.kernel)
            .args(["--memory", "2G", "--cpus", "2", "--rwdir"])
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")))
            .arg("--exec")
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start vng");
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > VM_TIMEOUT {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = child.wait_with_output().unwrap();
        let inside = std::fs::read_to_string(dir.join("inside.log")).unwrap_or_default();
        println!("VM: {} booted and ran the suite in {:.0} s", self.kernel.display(), started.elapsed().as_secs_f64());
        format!(
            "{}{}\n--- inside ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            inside
        )
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH").ok()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}
