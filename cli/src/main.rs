//! `render`: smallpt's scene to an image file (or stdout) from the command line. Its render flags
//! are the request parameters ([`Param`]): names, ranges, defaults and help all come from there.

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};
use indicatif::{ProgressBar, ProgressStyle};
use render::progressive::render_progressive;
use render::request::Param;
use render::{EngineKind, Limits, Progress, RenderOptions, RenderRequest, Scene, render_to_writer};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code for bad arguments, as clap uses.
const USAGE: u8 = 2;

/// The request parameters the CLI takes: all but `parts` (a fan-out needs the server's workers).
fn cli_params() -> impl Iterator<Item = Param> {
    Param::ALL.into_iter().filter(|p| *p != Param::Parts)
}

/// The command line: a flag per request parameter, then the CLI's own flags.
fn command() -> Command {
    let limits = Limits::DEFAULT;
    let mut cmd = Command::new("render")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Render smallpt's Cornell box")
        .allow_negative_numbers(true);
    for p in cli_params() {
        let help = format!("{} Allowed: {}.", p.help(), p.allowed(&limits));
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
            .help("Render threads; 0 uses every available core.")
            .value_name("THREADS")
            .value_parser(clap::value_parser!(usize))
            .default_value("0"),
    )
    .arg(
        Arg::new("out")
            .long("out")
            .help("Output file, or `-` for stdout.")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .default_value("image.ppm"),
    )
}

/// The request the flags describe, parsed and validated by the same code as a query string.
fn request(m: &ArgMatches) -> Result<RenderRequest, render::RequestError> {
    let given = cli_params().filter_map(|p| {
        if p == Param::Progressive {
            return m.get_flag(p.name()).then(|| (p.name(), "1".to_string()));
        }
        let explicit = m.value_source(p.name()) == Some(ValueSource::CommandLine);
        explicit.then(|| (p.name(), m.get_one::<String>(p.name()).cloned().unwrap_or_default()))
    });
    RenderRequest::from_pairs(given.collect::<Vec<_>>(), &Limits::DEFAULT)
}

fn main() -> ExitCode {
    let m = command().get_matches();
    let req = match request(&m) {
        Ok(req) => req,
        Err(e) => {
            eprintln!("error: --{}: {e}", e.param());
            return ExitCode::from(USAGE);
        }
    };
    let threads = m.get_one::<usize>("threads").copied().unwrap_or(0);
    let out = m.get_one::<PathBuf>("out").cloned().unwrap_or_else(|| PathBuf::from("image.ppm"));
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start {threads} threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
    match run(&req, &opts, &out) {
        Ok(stats) => {
            eprintln!(
                "{}x{} spp {} ({}{}) in {:.3} s: {:.2} M samples/s, {:.2} M segments/s, {} threads",
                req.width,
                req.height,
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
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Renders to stdout, or to a temporary file beside `out` renamed into place only when complete,
/// so a failed render never leaves a partial image behind. A target that exists and is not a
/// regular file (`/dev/null`, a FIFO, a terminal) is written in place: renaming a file over it
/// would replace the device (run as root, `--out /dev/null` used to turn /dev/null into a file).
fn run(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    out: &Path,
) -> Result<render::RenderStats, Box<dyn std::error::Error>> {
    let progress = (io::stderr().is_terminal()).then(|| spawn_progress(opts.progress.clone()));
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let in_place = std::fs::metadata(out).is_ok_and(|m| !m.is_file() && !m.is_dir());
    let result = if out == Path::new("-") {
        render_to_writer(req, opts, BufWriter::new(io::stdout())).map_err(Into::into)
    } else if in_place {
        // Progressive frames follow one another, as on stdout without the multipart framing.
        let file = std::fs::OpenOptions::new().write(true).open(out)?;
        if req.progressive {
            let mut w = BufWriter::new(file);
            let stats = render_progressive(&Scene::default(), req, opts, |frame| w.write_all(frame.image))?;
            w.flush()?;
            Ok(stats)
        } else {
            render_to_writer(req, opts, BufWriter::new(file)).map_err(Into::into)
        }
    } else if req.progressive {
        // Each frame replaces the file whole: a reader never sees a partial image.
        render_progressive(&Scene::default(), req, opts, |frame| {
            if let Some((bar, _)) = &progress {
                bar.set_message(format!("pass {}/{} spp {}", frame.pass, frame.passes, frame.spp));
            }
            let tmp = tempfile::Builder::new().prefix(".render-").tempfile_in(dir)?;
            tmp.as_file().write_all(frame.image)?;
            tmp.as_file().sync_all()?;
            tmp.persist(out).map_err(|e| e.error)?;
            Ok(())
        })
        .map_err(Into::into)
    } else {
        let tmp = tempfile::Builder::new().prefix(".render-").tempfile_in(dir)?;
        let file = tmp.reopen()?;
        let stats = render_to_writer(req, opts, BufWriter::new(file))?;
        tmp.as_file().sync_all()?;
        tmp.persist(out)?;
        Ok(stats)
    };
    if let Some((bar, handle)) = progress {
        bar.finish_and_clear();
        let _ = handle.join();
    }
    io::stdout().flush()?;
    result
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
