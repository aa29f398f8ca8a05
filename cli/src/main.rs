//! `render`: smallpt's scene to an image file (or stdout) from the command line. Its render flags
//! are the request parameters ([`Param`]): names, ranges, defaults and help all come from there.

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};
use indicatif::{ProgressBar, ProgressStyle};
use render::encode::{OutputSize, image_size};
use render::engine::fast::{SIMD_ENV, SimdPath};
use render::progressive::render_progressive;
use render::request::Param;
use render::{
    CancelToken, EngineKind, Format, Limits, MAX_THREADS, Progress, RenderOptions, RenderRequest, Scene,
    render_to_writer,
};
use std::fs::Permissions;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;
use tempfile::NamedTempFile;

/// Exit code for bad arguments, as clap uses.
const USAGE: u8 = 2;

/// Exit code when the reader of the image went away (`render --out - | head -c 100`): the status a
/// shell reports for a command killed by SIGPIPE, as `yes | head` gives. Rust ignores the signal,
/// so the write fails with `BrokenPipe` instead.
const BROKEN_PIPE: u8 = 128 + 13;

/// Extensions of image formats this does not write: an `--out` ending in one is refused rather
/// than given a PPM under that name.
const OTHER_IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "avif", "heic", "jxl", "exr", "hdr", "tga", "qoi"];

/// Compressed files' extensions and the program that writes each: this writes images
/// uncompressed, so `--out image.ppm.gz` would be a PPM that gunzip refuses. Refused, naming the
/// pipe that does it.
const COMPRESSORS: &[(&str, &str)] = &[
    ("gz", "gzip"),
    ("bz2", "bzip2"),
    ("xz", "xz"),
    ("lzma", "xz --format=lzma"),
    ("zst", "zstd"),
    ("lz4", "lz4"),
    ("br", "brotli"),
];

/// The server's limits without its per-instance bound on samples: that bound keeps a render
/// within a function's time limit, and a local render may take as long as its user asks (a
/// signal stops it). The sizes and spp keep their bounds, what the engines are tested for.
const LIMITS: Limits = Limits { max_samples: u64::MAX, ..Limits::DEFAULT };

/// The request parameters the CLI takes: all but `parts` (a fan-out needs the server's workers).
fn cli_params() -> impl Iterator<Item = Param> {
    Param::ALL.into_iter().filter(|p| *p != Param::Parts)
}

/// The command line: a flag per request parameter, then the CLI's own flags.
fn command() -> Command {
    let mut cmd = Command::new("render")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Render smallpt's Cornell box")
        .allow_negative_numbers(true);
    for p in cli_params() {
        let help = format!("{} Allowed: {}.", p.help(), p.allowed(&LIMITS));
        let mut arg = Arg::new(p.name()).long(p.name()).help(help).value_name(p.name().to_uppercase());
        if p == Param::Rows {
            arg = arg.value_name("A-B");
        }
        if p == Param::Progressive {
            // A switch on the command line: `--progressive` rather than `--progressive 1`.
            let help = format!(
                "{} With --out FILE the file is rewritten (atomically) after each pass; with --out - the \
                 frames go to stdout as the multipart stream.",
                p.help()
            );
            cmd = cmd.arg(Arg::new(p.name()).long(p.name()).help(help).action(ArgAction::SetTrue));
            continue;
        }
        if let Some(v) = p.value(&RenderRequest::default()) {
            // Shown in the help; only flags actually given are parsed (`request`).
            arg = arg.default_value(v);
        }
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new("threads")
            .long("threads")
            .help(format!("Render threads; 0 uses every available core. Allowed: 0 to {MAX_THREADS}."))
            .value_name("THREADS")
            .value_parser(clap::value_parser!(u32).range(0..=i64::from(MAX_THREADS)))
            .default_value("0"),
    )
    .arg(
        Arg::new("out")
            .long("out")
            .help(
                "Output file, or `-` for stdout. A name ending in .ppm, .png or .pfm sets the format when \
                 --format is not given, and must agree with it when it is; names of other image formats (.jpg, …) \
                 and of compressed files (.gz, …) are refused. [default: image.ppm, or image.png \
                 and so on to match --format]",
            )
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf)),
    )
}

/// The request the flags describe, parsed and validated by the same code as a query string, and
/// the file it goes to: why not, naming the flag, if they are bad.
///
/// The format and the file name agree: `--out a.png` alone writes a PNG, `--format png` alone
/// writes `image.png`, and a name that contradicts the format (`--format ppm --out a.png`, or
/// `a.jpg`, a format this does not write) is refused rather than written as a file whose name
/// lies about its contents.
fn request(m: &ArgMatches) -> Result<(RenderRequest, PathBuf), String> {
    let out = m.get_one::<PathBuf>("out").cloned();
    let named = match &out {
        Some(out) => named_format(out)?,
        None => None,
    };
    let mut given: Vec<(&str, String)> = cli_params()
        .filter_map(|p| {
            if p == Param::Progressive {
                return m.get_flag(p.name()).then(|| (p.name(), "1".to_string()));
            }
            let explicit = m.value_source(p.name()) == Some(ValueSource::CommandLine);
            explicit.then(|| (p.name(), m.get_one::<String>(p.name()).cloned().unwrap_or_default()))
        })
        .collect();
    let format_given = given.iter().any(|(name, _)| *name == Param::Format.name());
    if let Some(f) = named
        && !format_given
    {
        given.push((Param::Format.name(), f.name().to_string()));
    }
    let req = RenderRequest::from_pairs(given, &LIMITS).map_err(|e| format!("--{}: {e}", e.param()))?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("image.{}", req.format.extension())));
    if let Some(f) = named
        && f.extension() != req.format.extension()
    {
        return Err(format!(
            "--format: `{}` writes .{} files, but --out `{}` ends in .{}; leave out --format, or name a .{} file",
            req.format,
            req.format.extension(),
            out.display(),
            f.extension(),
            req.format.extension(),
        ));
    }
    Ok((req, out))
}

/// The format `out`'s extension names, if one this writes; an error if it names an image format
/// this does not write. `-` (stdout) and other names name none.
fn named_format(out: &Path) -> Result<Option<Format>, String> {
    let Some(ext) = out.extension().and_then(|e| e.to_str()).filter(|_| out != Path::new("-")) else {
        return Ok(None);
    };
    if let Some(f) = Format::for_extension(ext) {
        return Ok(Some(f));
    }
    if OTHER_IMAGE_EXTENSIONS.iter().any(|other| other.eq_ignore_ascii_case(ext)) {
        let formats = Format::ALL.iter().map(|f| format!("{f} (.{})", f.extension())).collect::<Vec<_>>();
        return Err(format!(
            "--out: `{}` ends in .{ext}, a format this does not write; the formats are {}",
            out.display(),
            formats.join(", ")
        ));
    }
    if let Some((_, program)) = COMPRESSORS.iter().find(|(c, _)| c.eq_ignore_ascii_case(ext)) {
        return Err(format!(
            "--out: `{0}` ends in .{ext}, but images are written uncompressed; compress stdout instead: \
             render --out - ... | {program} > {0}",
            out.display(),
        ));
    }
    Ok(None)
}

fn main() -> ExitCode {
    let m = command().get_matches();
    let (req, out) = match request(&m) {
        Ok(given) => given,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::from(USAGE);
        }
    };
    if let Ok(v) = std::env::var(SIMD_ENV)
        && let Err(e) = SimdPath::requested(&v)
    {
        eprintln!("error: {SIMD_ENV}: {e}");
        return ExitCode::from(USAGE);
    }
    // As gzip does: binary bytes on a terminal are garbage to the reader and can upset the
    // terminal itself. P3 is text.
    if out == Path::new("-") && req.format != Format::P3 && io::stdout().is_terminal() {
        eprintln!(
            "error: --out -: stdout is a terminal and a {} image is binary; redirect it (> image.{}) or give --out FILE",
            req.format.name(),
            req.format.extension()
        );
        return ExitCode::from(USAGE);
    }
    let threads = m.get_one::<u32>("threads").map_or(0, |&n| n as usize);
    // Installed before the temporary file can exist, and told whether it may: a signal then
    // stops the render so that the file is removed.
    let cancel = CancelToken::new();
    // (Not while opening a FIFO, which waits for a reader: Ctrl-C must still end that wait.)
    let may_leave_temp = Arc::new(AtomicBool::new(!Target::in_place(&out)));
    let stopped_by = match stop_on_signals(cancel.clone(), may_leave_temp.clone()) {
        Ok(signal) => signal,
        Err(e) => {
            eprintln!("error: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Checked before the render, which may take minutes: a target that cannot be written is a
    // bad `--out`, not a failure found at the end.
    // A one-shot image's size is known (PPM, PFM) or bounded (PNG, P3) before rendering: its room
    // on disk is taken first. (A progressive render writes its first frame after one short pass.)
    let size = (!req.progressive).then(|| image_size(&req));
    let target = match Target::open(&out, size) {
        Ok(target) => target,
        Err(why) => {
            eprintln!("error: --out: {why}");
            return ExitCode::from(USAGE);
        }
    };
    may_leave_temp.store(matches!(target, Target::Replace { .. }), Ordering::SeqCst);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start {threads} threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RenderOptions { pool: Some(&pool), cancel, ..RenderOptions::default() };
    let result = run(&req, &opts, target);
    // A signal ends the render as it would end any command: no message, 128 + its number. The
    // temporary file is gone by now (dropped with the render's `Target`).
    let signal = stopped_by.load(Ordering::SeqCst);
    if result.is_err() && signal != 0 {
        return ExitCode::from((128 + signal) as u8);
    }
    match result {
        Ok(stats) => {
            eprintln!(
                "{}x{}{} spp {} ({}{}) in {:.3} s: {:.2} M samples/s, {:.2} M segments/s, {} threads",
                req.width,
                req.height,
                // A band is what was rendered: the throughput counts its rows only.
                req.rows.map_or_else(String::new, |rows| format!(" rows {rows}")),
                stats.effective_spp,
                req.engine,
                if req.engine != EngineKind::Classic {
                    format!(", {}", render::engine::fast::simd_path())
                } else {
                    String::new()
                },
                stats.elapsed.as_secs_f64(),
                stats.msamples_per_sec(),
                stats.msegments_per_sec(),
                stats.threads,
            );
            ExitCode::SUCCESS
        }
        // No message: the reader chose to stop reading, as with any other command in a pipe.
        Err(e) if broken_pipe(&*e) => ExitCode::from(BROKEN_PIPE),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Handles SIGINT, SIGTERM and SIGHUP. While `may_leave_temp` holds, a signal cancels the render,
/// which ends through its error path and drops the temporary file beside `--out`: killed
/// outright, the process used to leave a `.render-XXXXXX` file behind. Otherwise (stdout, a
/// FIFO, a device: nothing to remove, and a write there may block for as long as its reader
/// waits) the signal does what it would have done. Returns where the caught signal's number is
/// kept (0: none).
fn stop_on_signals(cancel: CancelToken, may_leave_temp: Arc<AtomicBool>) -> io::Result<Arc<AtomicI32>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let got = Arc::new(AtomicI32::new(0));
    let seen = got.clone();
    std::thread::spawn(move || {
        // Repeats (`timeout` signals the process and then its group) only cancel again: a render
        // notices within a pixel, and a regular file's writes do not wait on anyone.
        for signal in signals.forever() {
            if !may_leave_temp.load(Ordering::SeqCst) {
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
            seen.store(signal, Ordering::SeqCst);
            cancel.cancel();
        }
    });
    Ok(got)
}

/// Whether `e` or an error it wraps is a write to a pipe (or FIFO) whose reader has closed it.
fn broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source())
        .any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

/// Where the image goes: stdout, a target written in place, or a temporary file beside the
/// target renamed into place only when complete, so a failed render never leaves a partial image
/// behind. A target that exists and is not a regular file (`/dev/null`, a FIFO, a terminal) is
/// written in place: renaming a file over it would replace the device (run as root, `--out
/// /dev/null` used to turn /dev/null into a file).
enum Target {
    /// A duplicate of file descriptor 1: Rust's `io::stdout()` takes a write refused with EBADF
    /// for one done, so `render --out - 1</dev/null` (stdout opened read-only) used to exit 0 with
    /// the image gone. (A closed stdout is reopened on /dev/null by Rust's runtime before `main`,
    /// so `>&-` cannot be told from `>/dev/null`.)
    Stdout(std::fs::File),
    InPlace(std::fs::File),
    /// The target, its directory, the permissions of the file it replaces (if one), and the first
    /// temporary file, made to show the directory is writable.
    Replace {
        out: PathBuf,
        dir: PathBuf,
        keep: Option<Permissions>,
        first: NamedTempFile,
    },
}

impl Target {
    /// Whether `out` is written where it is (stdout, or an existing file that is not a regular
    /// file: a FIFO, a device) rather than replaced through a temporary file.
    fn in_place(out: &Path) -> bool {
        out == Path::new("-") || std::fs::metadata(out).is_ok_and(|m| !m.is_file())
    }

    /// The target `out` names, opened, with room for an image of `size` taken on its disk if
    /// given: why it cannot be written if not. An exact size that does not fit is refused; a
    /// bound (PNG, P3) that does not fit is not, since the image may well be smaller, and is then
    /// not reserved.
    fn open(out: &Path, size: Option<OutputSize>) -> Result<Target, String> {
        if out == Path::new("-") {
            return io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map(|fd| Target::Stdout(fd.into()))
                .map_err(|e| format!("cannot write `-` (stdout): {}", os_message(&e)));
        }
        let shown = out.display();
        let cannot = |e: io::Error| format!("cannot write `{shown}`: {}", os_message(&e));
        let existing = std::fs::metadata(out);
        match existing {
            // A name the system refuses (too long, say) would fail only at the rename, after the
            // whole render.
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(cannot(e)),
            Ok(m) if m.is_dir() => Err(format!("`{shown}` is a directory; give a file name")),
            Ok(_) if Target::in_place(out) => {
                Ok(Target::InPlace(std::fs::OpenOptions::new().write(true).open(out).map_err(cannot)?))
            }
            // `new/` (a directory that does not exist): the rename at the end would fail.
            _ if out.as_os_str().as_encoded_bytes().ends_with(b"/") || out.file_name().is_none() => {
                Err(format!("`{shown}` names a directory; give a file name"))
            }
            _ => {
                let keep = existing.ok().map(|m| m.permissions());
                let out = through_links(out).map_err(cannot)?;
                let dir = match out.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                // A missing directory in the system's words (`tempfile`'s error keeps only its kind).
                std::fs::metadata(&dir).map_err(cannot)?;
                // The image goes through a temporary file beside the target: say so, since the
                // target itself may exist and be writable (`/proc/version`).
                let first = temp_beside(&dir, keep.as_ref()).map_err(|e| {
                    format!("cannot write `{shown}`: cannot create a file in `{}` ({})", dir.display(), os_message(&e))
                })?;
                if let Some(size) = size
                    && let Err(e) = reserve(first.as_file(), size.bound())
                    && let OutputSize::Exact(size) = size
                {
                    return Err(format!(
                        "cannot write `{shown}`: the image takes {size} bytes and `{}` has no room for them ({})",
                        dir.display(),
                        os_message(&e)
                    ));
                }
                Ok(Target::Replace { out, dir, keep, first })
            }
        }
    }
}

/// `out` with the symbolic links to it followed, so that the image replaces the file a link
/// points to, as a shell's `>` writes through it, rather than the link (which `--out latest.png`
/// used to turn into a file of its own, leaving the file it pointed to as it was). A dangling
/// link names the file to create.
fn through_links(out: &Path) -> io::Result<PathBuf> {
    let mut path = out.to_path_buf();
    // The kernel's own limit on links followed in one lookup.
    for _ in 0..40 {
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(path);
        }
        let to = std::fs::read_link(&path)?;
        // Relative to the link's directory; `join` keeps an absolute `to` as it is.
        path = path.parent().map_or_else(|| to.clone(), |dir| dir.join(&to));
    }
    // A loop: the kernel's words for it.
    Err(std::fs::metadata(&path).err().unwrap_or_else(|| io::Error::other("too many levels of symbolic links")))
}

/// Takes room for `size` bytes in `file` (empty, new), so that a disk too full for the image fails
/// now rather than after the render, which may take hours; the file is `size` long afterwards,
/// and is cut to what was written at the end (PNG and P3 end short of their bound). Where the
/// file system cannot reserve (`EOPNOTSUPP`: some network and FUSE file systems), nothing is
/// taken and a full disk is found when the image is written, as before.
fn reserve(file: &std::fs::File, size: u64) -> io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, size) {
        Ok(()) => Ok(()),
        // Out of space or quota, or past the process's file size limit (`ulimit -f`).
        Err(e @ (Errno::NOSPC | Errno::DQUOT | Errno::FBIG)) => Err(e.into()),
        Err(_) => Ok(()),
    }
}

/// A temporary file in `dir`, hidden, for an image renamed into place when complete. It gets the
/// permissions `keep` of the file it replaces, or a new file's (0666 less the umask, as `>` in a
/// shell gives): a temporary file's own 0600 made every image private to its owner.
fn temp_beside(dir: &Path, keep: Option<&Permissions>) -> io::Result<NamedTempFile> {
    let tmp =
        tempfile::Builder::new().prefix(".render-").permissions(Permissions::from_mode(0o666)).tempfile_in(dir)?;
    if let Some(keep) = keep {
        tmp.as_file().set_permissions(keep.clone())?;
    }
    Ok(tmp)
}

/// The operating system's words for `e`, without the path `tempfile` adds (the temporary
/// file's, not one the user gave).
fn os_message(e: &io::Error) -> String {
    e.raw_os_error().map_or_else(|| e.kind().to_string(), |code| io::Error::from_raw_os_error(code).to_string())
}

/// Renders `req` to `target`, with a progress bar on a terminal.
fn run(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    target: Target,
) -> Result<render::RenderStats, Box<dyn std::error::Error>> {
    let progress = (io::stderr().is_terminal()).then(|| spawn_progress(opts.progress.clone()));
    let result = write(req, opts, target, progress.as_ref().map(|(bar, _)| bar));
    if let Some((bar, handle)) = progress {
        bar.finish_and_clear();
        let _ = handle.join();
    }
    io::stdout().flush()?;
    result
}

/// [`run`]'s render and writes; the bar shows progressive passes.
fn write(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    target: Target,
    bar: Option<&ProgressBar>,
) -> Result<render::RenderStats, Box<dyn std::error::Error>> {
    Ok(match target {
        Target::Stdout(file) => render_to_writer(req, opts, BufWriter::new(file))?,
        Target::InPlace(file) if req.progressive => {
            // Progressive frames follow one another, as on stdout without the multipart framing.
            let mut w = BufWriter::new(file);
            let stats = render_progressive(&Scene::default(), req, opts, |frame| w.write_all(frame.image))?;
            w.flush()?;
            stats
        }
        Target::InPlace(file) => render_to_writer(req, opts, BufWriter::new(file))?,
        Target::Replace { out, dir, keep, first } if req.progressive => {
            // Each frame replaces the file whole: a reader never sees a partial image.
            let mut first = Some(first);
            render_progressive(&Scene::default(), req, opts, |frame| {
                if let Some(bar) = bar {
                    bar.set_message(format!("pass {}/{} spp {}", frame.pass, frame.passes, frame.spp));
                }
                let tmp = match first.take() {
                    Some(tmp) => tmp,
                    None => temp_beside(&dir, keep.as_ref())?,
                };
                tmp.as_file().write_all(frame.image)?;
                tmp.as_file().sync_all()?;
                tmp.persist(&out).map_err(|e| e.error)?;
                Ok(())
            })?
        }
        Target::Replace { out, first, .. } => {
            // Its own handle (the render takes a writer it owns) that still says where it ended.
            let file = Arc::new(first.reopen()?);
            let stats = render_to_writer(req, opts, BufWriter::new(Arc::clone(&file)))?;
            // PNG and P3 end short of the room taken for them.
            first.as_file().set_len(io::Seek::stream_position(&mut &*file)?)?;
            first.as_file().sync_all()?;
            first.persist(&out)?;
            stats
        }
    })
}

/// A progress bar fed from the render's progress counters until the bar is finished.
fn spawn_progress(progress: Progress) -> (ProgressBar, std::thread::JoinHandle<()>) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} rows {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let handle = std::thread::spawn(move || {
        while !b.is_finished() {
            let (done, total) = progress.get();
            b.set_length(u64::from(total));
            b.set_position(u64::from(done));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (bar, handle)
}
