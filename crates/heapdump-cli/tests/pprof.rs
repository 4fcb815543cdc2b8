//! `heapdump pprof` on the committed Go sample dump: both profiles as
//! pprof (gzip, mode 0600) and as folded stacks summing to the dump's live
//! bytes and objects, one line on stderr, and no profile written over a
//! dump. (`go tool pprof` itself checks the profiles in
//! tests/tests/pprof_*.rs.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The Go sample's live bytes and objects (samples/go/dumps, as
/// `heapdump summary` and memstats give them).
const BYTES: u64 = 310_512;
const OBJECTS: u64 = 2_385;

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples/go/dumps")
        .join(name)
        .display()
        .to_string()
}

fn heapdump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapdump"))
        // Plain output whatever the caller's terminal width.
        .env_remove("COLUMNS")
        .args(args)
        .output()
        .unwrap()
}

fn out(name: &str) -> String {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-pprof-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

#[test]
fn writes_both_profiles_as_pprof_and_folded_stacks() {
    let dump = sample("go1.26.godump");
    let bin = sample("go1.26.bin");
    for profile in ["sites", "retention"] {
        let path = out(&format!("{profile}.pb.gz"));
        let output = heapdump(&["pprof", &dump, &bin, "--profile", profile, "-o", &path]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with(&format!("wrote {path} ({profile} profile, pprof")))
                && stderr.contains(&format!("{OBJECTS} objects")),
            "{stderr}"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(&path).unwrap();

        for (index, total) in [("inuse_space", BYTES), ("inuse_objects", OBJECTS)] {
            let path = out(&format!("{profile}-{index}.folded"));
            let output = heapdump(&[
                "pprof",
                &dump,
                "--bin",
                &bin,
                "--profile",
                profile,
                "--format",
                "collapsed",
                "--sample-index",
                index,
                "-o",
                &path,
            ]);
            assert!(output.status.success(), "{output:?}");
            let text = std::fs::read_to_string(&path).unwrap();
            let sum: u64 = text
                .lines()
                .map(|line| line.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
                .sum();
            assert_eq!(sum, total, "{profile} {index}");
            if profile == "retention" {
                assert!(text.contains("bss;main.cache;"), "{text}");
            } else {
                assert!(text.contains("main.main"), "{text}");
            }
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn refuses_to_write_over_a_dump() {
    let dump = sample("go1.26.godump");
    let target = out("x.godump");
    let output = heapdump(&["pprof", &dump, "-o", &target]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("looks like a heap dump"));
    assert!(!std::path::Path::new(&target).exists());
}
