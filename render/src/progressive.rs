//! Progressive renders: the whole image at once, refined. Passes of doubling spp — 4, 8, 16, …
//! up to the requested spp, the last pass smaller to land on it — each add their samples to the
//! image's per-subpixel sums ([`SubpixelSums`]), and after each pass the whole image is encoded
//! at the spp reached: a [`Frame`].
//!
//! **Exact.** The fast engine's samples are keyed by position and index, and a pass adds them to
//! the sums in index order, so the frame at spp S is byte for byte the one-shot render at spp S
//! (the one-shot render accumulates the same way, in one pass). The whole stream costs about one
//! render at the final spp, plus the encoding of each frame.
//!
//! **Memory.** Unlike a one-shot render, which streams rows, the sums hold the whole image:
//! [`PROGRESSIVE_BYTES_PER_PIXEL`] per pixel, bounded by `Limits::max_progressive_bytes`.
//!
//! **Framing.** A stream of frames is `multipart/x-mixed-replace` ([`write_part`], [`write_end`]),
//! in every format: each part a whole image with its own `Content-Type`, `Content-Length` and
//! `X-Render-Spp`. A browser's `<img>` shows such a PNG stream frame after frame with no script.

use crate::color::{Rgb, SubpixelSums, resolve};
use crate::encode::{self, image_size};
use crate::engine::fast::Fast;
use crate::engine::{Cancelled, SceneError};
use crate::format::{Format, RowOrder};
use crate::request::{PROGRESSIVE_BYTES_PER_PIXEL, RenderRequest};
use crate::scene::Scene;
use crate::stream::{RenderError, RenderOptions, RenderStats, in_place_scope, install};
use rayon::prelude::*;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// The multipart boundary between frames.
pub const BOUNDARY: &str = "smallpt-frame";

/// The `Content-Type` of a stream of frames.
pub fn content_type() -> String {
    format!("multipart/x-mixed-replace; boundary={BOUNDARY}")
}

/// Samples per subpixel after each pass for a render of `n` per subpixel: 1, 2, 4, … while below
/// `n`, then `n` (spp 4, 8, 16, …, the requested spp).
pub fn passes(n: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::iter::successors(Some(1u32), |k| k.checked_mul(2)).take_while(|&k| k < n).collect();
    out.push(n);
    out
}

/// The image after a pass, encoded.
pub struct Frame<'a> {
    /// The spp reached (a multiple of 4).
    pub spp: u32,
    /// This pass, counted from 1.
    pub pass: usize,
    /// Passes in the render.
    pub passes: usize,
    /// The frame in the request's format: the bytes of the one-shot render at this spp.
    pub image: &'a [u8],
}

/// Renders `req` (progressive, fast engine) on `scene` pass by pass, calling `on_frame` with
/// each frame. A frame is resolved from the sums in parallel, then encoded on the calling thread
/// while the pool renders the next pass: the cores never wait for an encoder. Cancellable
/// between and within passes; the stats are the whole render's.
pub fn render_progressive(
    scene: &Scene,
    req: &RenderRequest,
    opts: &RenderOptions<'_>,
    mut on_frame: impl FnMut(&Frame<'_>) -> io::Result<()>,
) -> Result<RenderStats, RenderError> {
    let start = Instant::now();
    if !req.engine.progressive() {
        return Err(RenderError::Scene(SceneError::NotProgressive { engine: req.engine.name() }));
    }
    let engine = Fast::new(scene, req)?;
    let band = req.band();
    let (w, h) = (req.width as usize, band.len());
    let threads = opts.threads();
    let segments = AtomicU64::new(0);
    let schedule = passes(req.samples_per_subpixel());
    let mut sums = Vec::new();
    let pixels = w * h as usize;
    sums.try_reserve_exact(pixels)
        .map_err(|_| RenderError::OutOfMemory { bytes: pixels as u64 * PROGRESSIVE_BYTES_PER_PIXEL })?;
    sums.resize(pixels, [[0.0; 3]; 4]);
    // One pass over every row: samples `from..to` of each subpixel into the sums.
    let pass = |sums: &mut [SubpixelSums], from: u32, to: u32| -> Result<(), Cancelled> {
        let rows_done = AtomicU32::new(0);
        opts.progress.set(0, h);
        sums.par_chunks_mut(w).enumerate().try_for_each(|(k, row)| {
            let stats = engine.accumulate_span(band.start + k as u32, 0, from..to, row, &opts.cancel)?;
            segments.fetch_add(stats.segments, Ordering::Relaxed);
            opts.progress.set(rows_done.fetch_add(1, Ordering::Relaxed) + 1, h);
            Ok(())
        })
    };
    install(opts.pool, || pass(&mut sums, 0, schedule[0]))?;
    let row_len = encode::raw_row_len(req.format, req.width);
    let mut raw = vec![0u8; row_len * h as usize];
    for (i, &upto) in schedule.iter().enumerate() {
        // The frame at `upto` samples per subpixel, as raw carrier rows, top row first.
        install(opts.pool, || {
            raw.par_chunks_mut(row_len).zip(sums.par_chunks(w)).for_each_init(Vec::new, |buf, (out, row)| {
                let pixels: Vec<Rgb> = row.iter().map(|s| resolve(s, upto)).collect();
                encode::raw_row(req.format, &pixels, buf);
                out.copy_from_slice(buf);
            })
        });
        let next = schedule.get(i + 1).map(|&to| (upto, to));
        let mut rendered = Ok(());
        let mut written = Ok(());
        in_place_scope(opts.pool, |s| {
            if let Some((from, to)) = next {
                let (sums, rendered) = (&mut sums, &mut rendered);
                s.spawn(move |_| *rendered = pass(sums, from, to));
            }
            written = encode_frame(req.format, req.width, h, &raw, row_len).and_then(|image| {
                on_frame(&Frame { spp: 4 * upto, pass: i + 1, passes: schedule.len(), image: &image })
            });
            if written.is_err() {
                // Stop the pass in flight: nobody will read its frame.
                opts.cancel.cancel();
            }
        });
        written?;
        rendered?;
        // A cancel that came while the frame was written may have missed the (small, quick)
        // pass that ran beside it: no further frame goes out either way.
        if next.is_some() && opts.cancel.is_cancelled() {
            return Err(RenderError::Cancelled);
        }
    }
    Ok(RenderStats::of(req, segments.into_inner(), start, threads))
}

impl From<Cancelled> for RenderError {
    fn from(_: Cancelled) -> RenderError {
        RenderError::Cancelled
    }
}

/// `raw` (carrier rows, top first) encoded in `format`, rows in its order.
fn encode_frame(format: Format, width: u32, rows: u32, raw: &[u8], row_len: usize) -> io::Result<Vec<u8>> {
    let buf = crate::SharedBuf::default();
    let mut enc = encode::encoder(format, width, rows, buf.clone())?;
    let row = |k: u32| &raw[k as usize * row_len..(k as usize + 1) * row_len];
    for i in 0..rows {
        enc.write_raw_row(row(match format.row_order() {
            RowOrder::TopDown => i,
            RowOrder::BottomUp => rows - 1 - i,
        }))?;
    }
    enc.finish()?;
    Ok(buf.take())
}

/// Writes one frame as a part of the multipart stream.
pub fn write_part(out: &mut impl Write, format: Format, spp: u32, image: &[u8]) -> io::Result<()> {
    write!(
        out,
        "--{BOUNDARY}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Render-Spp: {spp}\r\n\r\n",
        format.content_type(),
        image.len()
    )?;
    out.write_all(image)?;
    out.write_all(b"\r\n")
}

/// Ends the multipart stream.
pub fn write_end(out: &mut impl Write) -> io::Result<()> {
    write!(out, "--{BOUNDARY}--\r\n")
}

/// The most bytes a progressive stream of `req` can take: every frame's size bound plus its
/// part header, and the closing boundary (what a platform's response cap is checked against).
pub fn stream_size_bound(req: &RenderRequest) -> u64 {
    let frames = passes(req.samples_per_subpixel());
    let image = image_size(req).bound();
    // The part header with the largest numbers it can hold.
    let header = format!(
        "--{BOUNDARY}\r\nContent-Type: {}\r\nContent-Length: {}\r\nX-Render-Spp: {}\r\n\r\n\r\n",
        req.format.content_type(),
        u64::MAX,
        u32::MAX
    )
    .len() as u64;
    frames.len() as u64 * (image + header) + BOUNDARY.len() as u64 + 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_double_and_land_on_the_spp() {
        assert_eq!(passes(1), [1]);
        assert_eq!(passes(2), [1, 2]);
        assert_eq!(passes(9), [1, 2, 4, 8, 9]);
        assert_eq!(passes(64), [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(passes(16384).len(), 15);
    }
}
