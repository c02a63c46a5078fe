//! Compiles the eBPF programs (feature `bpf`, on by default) with clang through libbpf-cargo and
//! generates the Rust skeleton. A missing clang fails the build with a message saying how to build
//! without BPF.

fn main() {
    #[cfg(feature = "bpf")]
    bpf::build();
}

#[cfg(feature = "bpf")]
mod bpf {
    use std::path::PathBuf;

    pub fn build() {
        const SRC: &str = "src/bpf/sensor.bpf.c";
        println!("cargo:rerun-if-changed={SRC}");
        println!("cargo:rerun-if-changed=src/bpf/vmlinux.h");
        println!("cargo:rerun-if-env-changed=CLANG");
        let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
        let found = std::process::Command::new(&clang)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            panic!(
                "vigil-sensor: `{clang}` was not found; it compiles the eBPF programs. Install clang \
                 (Debian: apt-get install clang) or build without BPF: \
                 `cargo build -p vigil-sensor --no-default-features` (proc backend only)."
            );
        }
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
            .join("sensor.skel.rs");
        let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
            Ok("x86_64") => "x86",
            Ok("aarch64") => "arm64",
            Ok(other) => panic!("vigil-sensor: no eBPF target mapping for arch {other}"),
            Err(_) => "x86",
        };
        if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
            .source(SRC)
            .clang(&clang)
            .clang_args([
                "-I".to_string(),
                "src/bpf".to_string(),
                format!("-D__TARGET_ARCH_{arch}"),
                "-O2".to_string(),
                "-g".to_string(),
            ])
            .build_and_generate(&out)
        {
            panic!("vigil-sensor: compiling {SRC} failed: {e:#}");
        }
    }
}
