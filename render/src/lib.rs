//! smallpt — Kevin Beason's 99-line path tracer — as a library: the scene as data, render engines
//! behind one trait, a parallel streaming driver and streaming encoders.
//!
//! ```no_run
//! use render::{RenderRequest, RenderOptions, render_to_writer};
//! let req = RenderRequest { spp: 16, ..RenderRequest::default() };
//! let file = std::io::BufWriter::new(std::fs::File::create("image.ppm")?);
//! let stats = render_to_writer(&req, &RenderOptions::default(), file)?;
//! eprintln!("{:.1} M segments/s", stats.msegments_per_sec());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// `unsafe` lives in one module, the fast engine's SIMD lanes (`engine::fast::lanes`), which allows it.
#![deny(unsafe_code)]

pub mod camera;
pub mod color;
pub mod control;
pub mod encode;
pub mod engine;
pub mod format;
pub mod progressive;
pub mod request;
pub mod rng;
pub mod scene;
pub mod stream;
pub mod vec3;

pub use color::Rgb;
pub use control::{CancelToken, Progress};
pub use format::{Format, RowOrder};
pub use request::{EngineKind, Limits, RenderRequest, RequestError, RowBand};
pub use scene::Scene;
pub use stream::{MAX_THREADS, RenderError, RenderOptions, RenderStats, render_rows};

/// This build of the engines: a hash of the render crate's sources (`build.rs`). Renders of one
/// request by two processes with the same `BUILD` (and SIMD arithmetic) are byte for byte the
/// same; a fan-out refuses to merge parts rendered by different ones.
pub const BUILD: &str = env!("RENDER_SOURCE_HASH");

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Renders `req` on smallpt's scene and writes it, encoded in `req.format`, to `out` as rows
/// finish (in the format's row order): the whole image, or with `req.rows` an image of just
/// those rows. With `req.progressive`, `out` gets the stream of frames instead
/// ([`progressive`]), flushed after each. Wrap `out` in a `BufWriter` if it is unbuffered:
/// encoders write one row at a time.
pub fn render_to_writer<W: Write + 'static>(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    out: W,
) -> Result<RenderStats, RenderError> {
    render_scene_to_writer(&Scene::default(), req, opts, out, || {})
}

/// [`render_to_writer`] for any scene, calling `on_output()` each time output has been written
/// to `out`: after each row, or after each frame of a progressive render.
pub fn render_scene_to_writer<W: Write + 'static>(
    scene: &Scene,
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    mut out: W,
    mut on_output: impl FnMut(),
) -> Result<RenderStats, RenderError> {
    if req.progressive {
        let stats = progressive::render_progressive(scene, req, opts, |frame| {
            progressive::write_part(&mut out, req.format, frame.spp, frame.image)?;
            out.flush()?;
            on_output();
            Ok(())
        })?;
        progressive::write_end(&mut out)?;
        out.flush()?;
        return Ok(stats);
    }
    let mut enc = encode::encoder(req.format, req.width, req.band().len(), out)?;
    let stats = render_rows(scene, req, opts, req.format.row_order(), |_, pixels| {
        enc.write_row(pixels)?;
        on_output();
        Ok(())
    })?;
    enc.finish()?;
    Ok(stats)
}

/// Renders `req` into memory: the encoded image and the stats.
pub fn render_to_vec(req: &RenderRequest, opts: &RenderOptions<'_>) -> Result<(Vec<u8>, RenderStats), RenderError> {
    let buf = SharedBuf::default();
    let stats = render_to_writer(req, opts, buf.clone())?;
    Ok((buf.take(), stats))
}

/// A `Vec<u8>` the encoder can own while the caller keeps a handle on it.
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// What was written, leaving the buffer empty.
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
