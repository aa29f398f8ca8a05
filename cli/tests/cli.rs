//! The `render` binary: output files, stdout, and bad arguments (exit 2, nothing left behind).

use std::path::Path;
use std::process::{Command, Output};

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_render")).args(args).output().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn writes_the_oracle_to_a_file_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("img.ppm");
    let o = render(&[
        "--width",
        "64",
        "--height",
        "48",
        "--spp",
        "4",
        "--engine",
        "classic",
        "--format",
        "p3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/smallpt-64x48-4spp.ppm"));
    assert_eq!(std::fs::read(&out).unwrap(), want.unwrap());
    assert_eq!(files_in(dir.path()), ["img.ppm"], "no temporary file left");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let last = stderr.lines().last().unwrap();
    for word in ["spp 4", "M samples/s", "M segments/s", " s:"] {
        assert!(last.contains(word), "last line {last:?} lacks {word:?}");
    }
}

#[test]
fn stdout_output_and_spp_rounding() {
    let o = render(&[
        "--width", "8", "--height", "4", "--spp", "5", "--format", "ppm", "--engine", "classic", "--out", "-",
    ]);
    assert!(o.status.success());
    assert!(o.stdout.starts_with(b"P6\n8 4\n255\n"));
    assert_eq!(o.stdout.len(), "P6\n8 4\n255\n".len() + 8 * 4 * 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("spp 8"), "spp 5 renders as 8");
}

#[test]
fn bad_arguments_exit_2_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("img.ppm");
    let out = out.to_str().unwrap();
    for (args, needle) in [
        (vec!["--spp", "0"], "spp"),
        (vec!["--spp", "65537"], "spp"),
        (vec!["--width", "0"], "width"),
        (vec!["--width", "9000"], "width"),
        (vec!["--height", "-3"], "height"),
        (vec!["--seed", "65536"], "seed"),
        (vec!["--spp", "four"], "spp"),
        (vec!["--format", "jpeg"], "format"),
        (vec!["--engine", "gpu"], "engine"),
        (vec!["--bogus"], "bogus"),
        (vec!["--threads", "100000"], "0..=1024"),
        (vec!["--threads", "-1"], "threads"),
    ] {
        let mut a = args.clone();
        a.extend(["--out", out]);
        let o = render(&a);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(files_in(dir.path()).is_empty(), "{args:?} left {:?}", files_in(dir.path()));
    }
}

/// A `RENDER_SIMD` that names no path is refused, not replaced by the widest path.
#[test]
fn an_unknown_simd_path_exits_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_render"))
        .args(["--width", "8", "--height", "8", "--spp", "4", "--out", "-"])
        .env("RENDER_SIMD", "avx-2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("RENDER_SIMD") && stderr.contains("`avx-2`") && o.stdout.is_empty(), "{stderr}");
}

/// A target that cannot be written is a bad `--out`, found before the render: exit 2, a message
/// naming it, and no file left behind.
#[test]
fn an_unwritable_target_exits_2_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-dir/img.ppm");
    let missing = missing.to_str().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let under_file = file.join("img.ppm");
    // Longer than a file name may be (255 bytes): it used to fail at the rename, after the render.
    let too_long = dir.path().join(format!("{}.ppm", "a".repeat(300)));
    let cases = [
        (missing, "No such file or directory"),
        (dir.path().to_str().unwrap(), "is a directory"),
        (&format!("{}/new/", dir.path().display()), "names a directory"),
        (under_file.to_str().unwrap(), "Not a directory"),
        (too_long.to_str().unwrap(), "File name too long"),
        // A file that exists in a directory where no file can be made (it said "entity not found").
        ("/proc/version", "cannot create a file in `/proc`"),
    ];
    for (out, why) in cases {
        for progressive in [false, true] {
            let mut args = vec!["--width", "8", "--height", "8", "--spp", "4", "--out", out];
            if progressive {
                args.push("--progressive");
            }
            let o = render(&args);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("--out") && stderr.contains(out) && stderr.contains(why), "{args:?}: {stderr}");
            assert!(!stderr.contains("samples/s"), "{args:?}: reported at the end, not before the render: {stderr}");
        }
    }
    assert_eq!(files_in(dir.path()), ["a-file"]);
}

#[test]
fn the_default_engine_is_fast_and_names_its_simd_path() {
    let o = render(&["--width", "16", "--height", "12", "--spp", "4", "--format", "ppm", "--out", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.starts_with(b"P6\n16 12\n255\n"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        ["(fast, avx512)", "(fast, avx2)", "(fast, sse2)", "(fast, scalar)"].iter().any(|p| last.contains(p)),
        "{last}"
    );
    let forced = Command::new(env!("CARGO_BIN_EXE_render"))
        .args(["--width", "8", "--height", "8", "--out", "-"])
        .env("RENDER_SIMD", "scalar")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&forced.stderr).contains("(fast, scalar)"));
}

#[test]
fn rows_renders_a_band_and_bad_rows_exit_2() {
    let args = ["--width", "9", "--height", "7", "--spp", "4", "--engine", "classic", "--out", "-"];
    let whole = render(&args);
    let band = render(&[&args[..], &["--rows", "2-5"]].concat());
    assert!(band.status.success(), "{}", String::from_utf8_lossy(&band.stderr));
    let (h_whole, h_band) = ("P6\n9 7\n255\n".len(), "P6\n9 3\n255\n".len());
    assert!(band.stdout.starts_with(b"P6\n9 3\n255\n"));
    let report = String::from_utf8_lossy(&band.stderr);
    assert!(report.lines().last().unwrap().starts_with("9x7 rows 2-5 spp 4 (classic)"), "{report}");
    assert_eq!(band.stdout[h_band..], whole.stdout[h_whole + 2 * 27..h_whole + 5 * 27]);
    for bad in ["5-5", "0-8", "x", "3-1"] {
        let o = render(&[&args[..], &["--rows", bad]].concat());
        assert_eq!(o.status.code(), Some(2), "--rows {bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("rows"), "--rows {bad}");
    }
}

#[test]
fn progressive_rewrites_the_file_with_the_final_render() {
    let dir = tempfile::tempdir().unwrap();
    let (prog, once) = (dir.path().join("p.png"), dir.path().join("o.png"));
    let args = ["--width", "32", "--height", "24", "--spp", "20", "--seed", "3", "--format", "png"];
    let o = render(&[&args[..], &["--progressive", "--out", prog.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(render(&[&args[..], &["--out", once.to_str().unwrap()]].concat()).status.success());
    assert!(std::fs::read(&prog).unwrap() == std::fs::read(&once).unwrap(), "the last frame is the one-shot render");
    let mut files = files_in(dir.path());
    files.sort();
    assert_eq!(files, ["o.png", "p.png"], "no temporary file left");
    let o = render(&["--progressive", "--engine", "classic", "--out", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("engine"));
}

/// A target that is not a regular file is written, not replaced: a FIFO gets the image and is
/// still a FIFO afterwards (renaming the finished file over it used to replace it, and as root
/// `--out /dev/null` turned /dev/null into a regular file).
#[test]
fn a_fifo_or_device_target_is_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success(), "mkfifo");
    // The reader blocks until a writer opens the FIFO; a render that never does (the old rename)
    // must fail the test, not hang it.
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let fifo = fifo.clone();
        std::thread::spawn(move || tx.send(std::fs::read(&fifo).unwrap()));
    }
    let args = ["--width", "8", "--height", "6", "--spp", "4", "--engine", "classic", "--format", "ppm"];
    let o = render(&[&args[..], &["--out", fifo.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("nothing was written to the FIFO");
    assert!(got == render(&[&args[..], &["--out", "-"]].concat()).stdout, "the FIFO got the image");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    assert_eq!(files_in(dir.path()), ["pipe"], "no temporary file left");
}

/// A reader that stops early (`render --out - | head -c 100`) ends the render quietly with the
/// status of a command killed by SIGPIPE; it used to print "error: writing the image failed: Broken
/// pipe" and exit 1. A write that fails for another reason still says why.
#[test]
fn a_closed_pipe_ends_the_render_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    for progressive in [false, true] {
        // 256×256 PPM is 196 KB, more than a pipe holds, so the render is still writing when the
        // reader goes.
        let mut args = vec!["--width", "256", "--height", "256", "--spp", "16", "--out", "-"];
        if progressive {
            args.push("--progressive");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_render"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(141), "progressive {progressive}");
        assert!(o.stderr.is_empty(), "progressive {progressive}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let full = render(&["--width", "8", "--height", "6", "--out", "/dev/full"]);
    assert_eq!(full.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&full.stderr).contains("No space left on device"));
}

/// A stdout opened read-only (`1</dev/null`) is an error, not an image silently dropped: it used
/// to exit 0 with nothing written, since Rust's stdout takes EBADF for success.
#[test]
fn a_stdout_that_cannot_be_written_is_an_error() {
    let o = Command::new("sh")
        .args(["-c", "exec \"$0\" \"$@\" 1</dev/null", env!("CARGO_BIN_EXE_render")])
        .args(["--width", "8", "--height", "6", "--spp", "4", "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Bad file descriptor"), "{o:?}");
}

/// Polls `dir` (bounded) until `ready` holds for its file names.
fn wait_for(dir: &Path, ready: impl Fn(&[String]) -> bool) {
    let start = std::time::Instant::now();
    while !ready(&files_in(dir)) {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "waited for {:?}", files_in(dir));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Sends `kill -<signal>` to `child`.
fn kill(child: &std::process::Child, signal: &str) {
    assert!(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap().success());
}

/// SIGINT, SIGTERM or SIGHUP in the middle of a render removes its temporary file and exits with
/// 128 + the signal's number; killed outright, it used to leave a `.render-XXXXXX` file beside
/// the target. A progressive render keeps its last whole frame. Written to stdout (nothing to
/// remove), the signal does what it does by default. The long render is 5·10¹⁰ samples, past the
/// server's per-instance limit (2³³), which the CLI does not keep: it used to refuse it, telling
/// the user to split it into `parts`, which the CLI does not take.
#[test]
fn a_signal_stops_the_render_and_removes_its_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let long = ["--width", "1024", "--height", "768", "--spp", "65536", "--engine", "classic"];
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.ppm");
        let child = Command::new(env!("CARGO_BIN_EXE_render"))
            .args(long)
            .arg("--out")
            .arg(&out)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(dir.path(), |names| !names.is_empty());
        kill(&child, signal);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{signal}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stderr.is_empty(), "{signal}: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{signal}: nothing left");
    }
    // Progressive: the first pass is in the file; the signal comes during a later one.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.ppm");
    let args = ["--width", "64", "--height", "48", "--spp", "65536", "--progressive"];
    let child = Command::new(env!("CARGO_BIN_EXE_render")).args(args).arg("--out").arg(&out).spawn().unwrap();
    wait_for(dir.path(), |names| names == ["p.ppm"]);
    kill(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143));
    assert_eq!(files_in(dir.path()), ["p.ppm"], "the last frame, and no temporary file");
    assert_eq!(std::fs::read(&out).unwrap().len(), "P6\n64 48\n255\n".len() + 64 * 48 * 3, "a whole frame");
    // Stdout: killed as any command is (after the first frame, so the handlers are in place).
    let mut child = Command::new(env!("CARGO_BIN_EXE_render"))
        .args(args)
        .args(["--out", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    kill(&child, "TERM");
    assert_eq!(child.wait().unwrap().signal(), Some(15));
}

/// A binary image is not written to a terminal (as gzip refuses to): `render --out -` typed
/// at a shell used to fill it with bytes. P3 is text and is written. The terminal is a pseudo
/// terminal from util-linux's `script`.
#[test]
fn a_binary_image_is_not_written_to_a_terminal() {
    let on_a_terminal = |args: &str| {
        let command = format!("{} {args}", env!("CARGO_BIN_EXE_render"));
        let o = Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("util-linux's script");
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    for format in ["ppm", "png", "pfm"] {
        let (code, shown) = on_a_terminal(&format!("--width 8 --height 6 --format {format} --out -"));
        assert_eq!(code, Some(2), "{format}: {shown}");
        assert!(
            shown.contains("stdout is a terminal") && shown.contains(&format!("a {format} image is binary")),
            "{shown}"
        );
    }
    let (code, shown) = on_a_terminal("--width 8 --height 6 --format p3 --out -");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("P3\r\n8 6\r\n255"), "{shown}");
}

/// The file name and the format agree: a known extension picks the format when `--format` is not
/// given, `--format` alone names the default file after it, and a name that contradicts the
/// format, names an image format this does not write or a compressed file, is exit 2 with no file
/// (`--out a.png` used to write a PPM named a.png, `--out a.ppm.gz` an uncompressed one).
#[test]
fn the_file_name_picks_the_format_and_must_agree_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let size = ["--width", "8", "--height", "6", "--spp", "4", "--seed", "2"];
    let stdout = |format: &str| render(&[&size[..], &["--format", format, "--out", "-"]].concat()).stdout;
    for (name, format) in [("a.png", "png"), ("b.PNG", "png"), ("c.pfm", "pfm"), ("d.ppm", "ppm"), ("e.img", "ppm")] {
        let out = dir.path().join(name);
        let o = render(&[&size[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(&out).unwrap() == stdout(format), "{name} holds {format}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_render"))
        .args([&size[..], &["--format", "png"]].concat())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(dir.path().join("image.png")).unwrap() == stdout("png"), "--format png alone: image.png");
    let p3 = dir.path().join("f.ppm");
    assert!(render(&[&size[..], &["--format", "p3", "--out", p3.to_str().unwrap()]].concat()).status.success());
    assert!(std::fs::read(&p3).unwrap() == stdout("p3"), "P3 is a .ppm file too");

    let before = files_in(dir.path());
    for (format, name, needle) in [
        (Some("ppm"), "g.png", "ends in .png"),
        (Some("png"), "h.ppm", "ends in .ppm"),
        (Some("pfm"), "i.png", "ends in .png"),
        (Some("p3"), "j.pfm", "ends in .pfm"),
        (None, "k.jpg", "does not write"),
        (Some("png"), "l.JPEG", "does not write"),
        (None, "m.ppm.gz", "| gzip > "),
        (Some("png"), "n.png.ZST", "| zstd > "),
    ] {
        let out = dir.path().join(name);
        let mut args = vec!["--width", "8", "--height", "6", "--out", out.to_str().unwrap()];
        args.extend(format.map(|f| ["--format", f]).iter().flatten());
        for progressive in [false, true] {
            if progressive {
                args.push("--progressive");
            }
            let o = render(&args);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(needle) && stderr.contains(name), "{args:?}: {stderr}");
        }
    }
    assert_eq!(files_in(dir.path()), before, "no file written for a refused name");
}

/// The image gets a new file's permissions (0666 less the umask), or keeps those of the file it
/// replaces; the temporary file it is written through used to leave every image at 0600.
#[test]
fn the_image_gets_a_new_files_permissions_or_keeps_the_old_ones() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
    let with_umask_027 = |args: &[&str]| {
        let o = Command::new("sh")
            .args(["-c", "umask 027 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_render")])
            .args(["--width", "8", "--height", "6", "--spp", "8"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    with_umask_027(&["--out", "new.ppm"]);
    with_umask_027(&["--out", "new-progressive.png", "--progressive"]);
    assert_eq!((mode("new.ppm"), mode("new-progressive.png")), (0o640, 0o640));
    for name in ["old.ppm", "old-progressive.png"] {
        std::fs::write(dir.path().join(name), b"old").unwrap();
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o604)).unwrap();
    }
    with_umask_027(&["--out", "old.ppm"]);
    with_umask_027(&["--out", "old-progressive.png", "--progressive"]);
    assert_eq!((mode("old.ppm"), mode("old-progressive.png")), (0o604, 0o604));
    assert!(std::fs::read(dir.path().join("old.ppm")).unwrap().starts_with(b"P6\n8 6\n"), "replaced");
    let mut files = files_in(dir.path());
    files.sort();
    assert_eq!(files, ["new-progressive.png", "new.ppm", "old-progressive.png", "old.ppm"], "no temporary file left");
}

/// A symbolic link is written through, as a shell's `>` does: the file it points to gets the
/// image (a dangling link's target is created) and the link stays a link; a loop of links is
/// exit 2. The finished image used to be renamed over the link itself.
#[test]
fn a_symbolic_link_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("renders")).unwrap();
    std::fs::write(d.join("renders/old.ppm"), b"old").unwrap();
    let link = |to: &str, name: &str| std::os::unix::fs::symlink(to, d.join(name)).unwrap();
    link("renders/old.ppm", "latest.ppm");
    link("renders/new.ppm", "dangling.ppm");
    link("b.ppm", "a.ppm");
    link("a.ppm", "b.ppm");
    let args = ["--width", "8", "--height", "6", "--spp", "4", "--seed", "5"];
    let want = render(&[&args[..], &["--out", "-"]].concat()).stdout;
    for (name, progressive, target) in
        [("latest.ppm", false, "renders/old.ppm"), ("dangling.ppm", true, "renders/new.ppm")]
    {
        let mut a = args.to_vec();
        let out = d.join(name);
        a.extend(["--out", out.to_str().unwrap()]);
        if progressive {
            a.push("--progressive");
        }
        let o = render(&a);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink(), "{name} is still a link");
        assert!(std::fs::read(d.join(target)).unwrap() == want, "{target} got the image through {name}");
    }
    let looped = d.join("a.ppm");
    let o = render(&[&args[..], &["--out", looped.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("symbolic links"), "{stderr}");
    assert!(std::fs::symlink_metadata(&looped).unwrap().file_type().is_symlink(), "the loop is left as it was");
    let mut files = files_in(&d.join("renders"));
    files.sort();
    assert_eq!(files, ["new.ppm", "old.ppm"], "no temporary file left");
}

/// An image the disk has no room for is refused before the render (exit 2, nothing left behind),
/// not found at the end of it: the room for a PPM or PFM, whose size is known, is taken first.
/// The disk here is the process's file size limit (`ulimit -f`, with SIGXFSZ ignored, so that
/// the limit answers `EFBIG` as a full disk answers `ENOSPC`): 1800 blocks, 0.92 MB in dash's
/// 512-byte blocks (POSIX's), 1.8 MB in bash's 1024.
#[test]
fn an_image_the_disk_has_no_room_for_is_refused_before_the_render() {
    let dir = tempfile::tempdir().unwrap();
    let limited = |args: &[&str]| {
        Command::new("sh")
            .args(["-c", r#"trap "" XFSZ; ulimit -f 1800; exec "$0" "$@""#, env!("CARGO_BIN_EXE_render")])
            .args(args)
            .output()
            .unwrap()
    };
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for (format, bytes) in [("ppm", 2359312), ("pfm", 9437201)] {
        let big = limited(&["--spp", "64", "--format", format, "--out", &out(&format!("big.{format}"))]);
        let stderr = String::from_utf8_lossy(&big.stderr);
        assert_eq!(big.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("the image takes {bytes} bytes")) && stderr.contains("has no room"),
            "{stderr}"
        );
        assert!(!stderr.contains("samples/s"), "rendered before refusing: {stderr}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }
    // A PNG's size is only bounded (2.4 MB here) and this one is about 800 kB: it is written.
    let png = limited(&["--spp", "4", "--format", "png", "--out", &out("fits.png")]);
    assert!(png.status.success(), "{}", String::from_utf8_lossy(&png.stderr));
    // Images that fit are the bytes stdout gets, cut to their length after the room taken.
    let small = ["--width", "256", "--height", "192", "--spp", "4"];
    for format in ["ppm", "pfm", "png", "p3"] {
        let name = out(&format!("small.{format}"));
        let file = limited(&[&small[..], &["--format", format, "--out", &name]].concat());
        assert!(file.status.success(), "{}", String::from_utf8_lossy(&file.stderr));
        let stdout = render(&[&small[..], &["--format", format, "--out", "-"]].concat());
        assert_eq!(std::fs::read(&name).unwrap(), stdout.stdout, "{format}");
    }
    assert_eq!(
        std::fs::read(out("fits.png")).unwrap(),
        render(&["--spp", "4", "--format", "png", "--out", "-"]).stdout
    );
    let mut left = files_in(dir.path());
    left.sort();
    assert_eq!(left, ["fits.png", "small.p3", "small.pfm", "small.png", "small.ppm"]);
}
