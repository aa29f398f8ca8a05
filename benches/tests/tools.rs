//! The report and quality tools' command lines: help, bad flags and bad settings are answered
//! before anything is rendered or written.

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin).args(args).envs(env.iter().copied()).current_dir(dir.path()).output().unwrap();
    let files = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    (out, files)
}

#[test]
fn help_bad_flags_and_bad_settings_write_nothing() {
    for bin in [env!("CARGO_BIN_EXE_report"), env!("CARGO_BIN_EXE_quality")] {
        let (o, files) = run(bin, &["--help"], &[]);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Usage:"), "{bin} --help");
        assert!(files.is_empty(), "{bin} --help wrote {files:?}");
        let (o, files) = run(bin, &["--bogus"], &[]);
        assert_eq!(o.status.code(), Some(2), "{bin} --bogus");
        assert!(files.is_empty(), "{bin} --bogus wrote {files:?}");
    }
    let quality = env!("CARGO_BIN_EXE_quality");
    for (name, value) in
        [("QUALITY_RUNS", "three"), ("QUALITY_SIZE", "512"), ("QUALITY_SIZE", "0x384"), ("QUALITY_AT", "1s")]
    {
        let (o, files) = run(quality, &["q.svg"], &[(name, value)]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(value), "{name}={value}: {stderr}");
        assert!(files.is_empty(), "{name}={value} wrote {files:?}");
    }
}
