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
pub use stream::{RenderError, RenderOptions, RenderStats, render_rows};

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Renders `req` on smallpt's scene and writes it, encoded in `req.format`, to `out` as rows
/// finish (in the format's row order): the whole image, or with `req.rows` an image of just
/// those rows. Wrap `out` in a `BufWriter` if it is unbuffered: encoders write one row at a time.
pub fn render_to_writer<W: Write + 'static>(
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    out: W,
) -> Result<RenderStats, RenderError> {
    render_scene_to_writer(&Scene::default(), req, opts, out, |_| {})
}

/// [`render_to_writer`] for any scene, calling `on_row(row)` after each row (counted from the
/// top of the whole image) has been written to `out`.
pub fn render_scene_to_writer<W: Write + 'static>(
    scene: &Scene,
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    out: W,
    mut on_row: impl FnMut(u32),
) -> Result<RenderStats, RenderError> {
    let mut enc = encode::encoder(req.format, req.width, req.band().len(), out)?;
    let stats = render_rows(scene, req, opts, req.format.row_order(), |row, pixels| {
        enc.write_row(pixels)?;
        on_row(row);
        Ok(())
    })?;
    enc.finish()?;
    Ok(stats)
}

/// Renders `req` into memory: the encoded image and the stats.
pub fn render_to_vec(req: &RenderRequest, opts: &RenderOptions<'_>) -> Result<(Vec<u8>, RenderStats), RenderError> {
    let buf = SharedBuf::default();
    let stats = render_to_writer(req, opts, buf.clone())?;
    let bytes = std::mem::take(&mut *buf.0.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((bytes, stats))
}

/// A `Vec<u8>` the encoder can own while the caller keeps a handle on it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
