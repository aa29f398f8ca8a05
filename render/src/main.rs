//! `render`: smallpt's scene to an image file (or stdout) from the command line.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use render::{CancelToken, EngineKind, Format, Limits, RenderOptions, RenderRequest, RowBand, render_to_writer};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Render smallpt's Cornell box.
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// Image width in pixels (1-8192).
    #[arg(long, default_value_t = RenderRequest::default().width)]
    width: u32,
    /// Image height in pixels (1-8192).
    #[arg(long, default_value_t = RenderRequest::default().height)]
    height: u32,
    /// Samples per pixel (1-65536), rounded up to a multiple of 4.
    #[arg(long, default_value_t = RenderRequest::default().spp)]
    spp: u32,
    /// Engine.
    #[arg(long, default_value = RenderRequest::default().engine.name(), value_parser = parse_engine)]
    engine: EngineKind,
    /// Output format: ppm (binary P6), p3 (ASCII, smallpt's layout), png, pfm (linear f32).
    #[arg(long, default_value = RenderRequest::default().format.name(), value_parser = parse_format)]
    format: Format,
    /// Random seed (0-65535); 0 is smallpt's own sequence.
    #[arg(long, default_value_t = RenderRequest::default().seed)]
    seed: u32,
    /// Only rows A (included) to B (excluded) of the image, as an image of B-A rows whose pixels
    /// are those of the whole render (0 <= A < B <= height).
    #[arg(long, value_name = "A-B", value_parser = parse_rows)]
    rows: Option<RowBand>,
    /// Render threads; 0 uses every available core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Output file, or `-` for stdout.
    #[arg(long, default_value = "image.ppm")]
    out: PathBuf,
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse().map_err(|e: render::RequestError| e.to_string())
}

fn parse_rows(s: &str) -> Result<RowBand, String> {
    s.parse().map_err(|()| format!("`{s}` is not A-B with A < B (0-based rows, B excluded)"))
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: render::RequestError| e.to_string())
}

/// Exit code for bad arguments, as clap uses.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    let req = RenderRequest {
        width: args.width,
        height: args.height,
        spp: args.spp,
        engine: args.engine,
        format: args.format,
        seed: args.seed,
        rows: args.rows,
        parts: None,
    };
    if let Err(e) = req.validate(&Limits::DEFAULT) {
        eprintln!("error: --{}: {e}", e.param());
        return ExitCode::from(USAGE);
    }
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(args.threads).build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start {} threads: {e}", args.threads);
            return ExitCode::FAILURE;
        }
    };
    let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
    match run(&req, &opts, &args.out) {
        Ok(stats) => {
            eprintln!(
                "{}x{} spp {} ({}{}) in {:.3} s: {:.2} M samples/s, {:.2} M segments/s, {} threads",
                req.width,
                req.height,
                stats.effective_spp,
                req.engine,
                if req.engine == EngineKind::Fast {
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
/// so a failed render never leaves a partial image behind.
fn run(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    out: &Path,
) -> Result<render::RenderStats, Box<dyn std::error::Error>> {
    let progress = (io::stderr().is_terminal()).then(|| spawn_progress(opts.cancel.clone()));
    let result = if out == Path::new("-") {
        render_to_writer(req, opts, BufWriter::new(io::stdout())).map_err(Into::into)
    } else {
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
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
fn spawn_progress(cancel: CancelToken) -> (ProgressBar, std::thread::JoinHandle<()>) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b = bar.clone();
    let handle = std::thread::spawn(move || {
        while !b.is_finished() {
            let (done, total) = cancel.progress();
            b.set_length(u64::from(total));
            b.set_position(u64::from(done));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (bar, handle)
}
