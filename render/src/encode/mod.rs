//! Streaming image encoders: each takes rows in the order
//! [`Format::row_order`](crate::format::Format::row_order) gives and writes them out as they come,
//! holding at most one row (PNG: plus its compressor's window), never the image.
//!
//! PFM stores rows bottom to top; rather than buffer the image, the driver renders PFM bottom-up
//! ([`RowOrder::BottomUp`](crate::format::RowOrder)), so every format streams in constant memory.
//!
//! Every encoder also takes *raw* rows: the row as its lossless carrier format stores it
//! ([`Format::carrier`]: P6's three bytes a pixel for the 8-bit formats, PFM's twelve for PFM). A
//! fan-out's parts travel in the carrier, and the coordinator re-encodes their rows with
//! [`RowEncoder::write_raw_row`]: the same bytes as encoding the pixels here, since the 8-bit
//! formats are a function of the quantised bytes and PFM of the f32 values.

pub mod png;
pub mod ppm;
pub mod raw;

use crate::color::{Rgb, gamma_steps};
use crate::format::Format;
use crate::request::RenderRequest;
use std::io::{self, Write};

/// An encoder that receives an image one row at a time.
pub trait RowEncoder {
    /// Encodes the next row (in the format's row order) and writes it out.
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()>;
    /// Encodes the next row given as carrier data ([`raw_row_len`] bytes) and writes it out.
    fn write_raw_row(&mut self, raw: &[u8]) -> io::Result<()>;
    /// Writes whatever the format needs after the last row and flushes.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Bytes in one raw row of `width` pixels of `format`'s carrier.
pub fn raw_row_len(format: Format, width: u32) -> usize {
    let per_pixel = match format.carrier() {
        Format::Pfm => 12,
        _ => 3,
    };
    per_pixel * width as usize
}

/// The header of a P6 or PFM image (the formats whose header is all that precedes the rows).
pub fn header(format: Format, width: u32, height: u32) -> String {
    match format {
        Format::Ppm => format!("P6\n{width} {height}\n255\n"),
        Format::P3 => format!("P3\n{width} {height}\n255\n"),
        // Negative scale: little-endian.
        Format::Pfm => format!("PF\n{width} {height}\n-1.0\n"),
        Format::Png => String::new(),
    }
}

/// An encoder for `format` writing to `out`; the header is written at once. `out` is owned
/// (`'static`) because the `png` crate's stream writer owns its writer.
pub fn encoder<W: Write + 'static>(format: Format, width: u32, height: u32, out: W) -> io::Result<Box<dyn RowEncoder>> {
    Ok(match format {
        Format::Ppm | Format::Pfm => Box::new(raw::Raw::new(format, width, height, out)?),
        Format::P3 => Box::new(ppm::P3::new(width, height, out)?),
        Format::Png => Box::new(png::Png::new(width, height, out)?),
    })
}

/// The size of an encoded image in bytes: exact where the format fixes it, else an upper bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputSize {
    /// Exactly this many bytes.
    Exact(u64),
    /// At most this many bytes.
    AtMost(u64),
}

impl OutputSize {
    /// The exact size or the bound.
    pub fn bound(self) -> u64 {
        match self {
            OutputSize::Exact(n) | OutputSize::AtMost(n) => n,
        }
    }
}

/// How large `req`'s image (its band of rows, in its format) can be, known before rendering.
pub fn image_size(req: &RenderRequest) -> OutputSize {
    output_size(req.format, req.width, req.band().len())
}

/// How large `format` at `width`×`height` can be, known before rendering.
pub fn output_size(format: Format, width: u32, height: u32) -> OutputSize {
    let pixels = u64::from(width) * u64::from(height);
    let header = header(format, width, height).len() as u64;
    match format {
        Format::Ppm => OutputSize::Exact(header + 3 * pixels),
        // "255 255 255 " is the longest a pixel gets.
        Format::P3 => OutputSize::AtMost(header + 12 * pixels),
        Format::Pfm => OutputSize::Exact(header + 12 * pixels),
        Format::Png => OutputSize::AtMost(png::max_size(width, height)),
    }
}

/// `pixels` as a raw row of `format`'s carrier (what [`RowEncoder::write_raw_row`] takes), into
/// `buf`: the quantised bytes for the 8-bit formats, little-endian f32 for PFM.
pub fn raw_row(format: Format, pixels: &[Rgb], buf: &mut Vec<u8>) {
    match format.carrier() {
        Format::Pfm => {
            buf.clear();
            buf.extend(pixels.iter().flat_map(|p| [p.x, p.y, p.z]).flat_map(|c| (c as f32).to_le_bytes()));
        }
        _ => quantise(pixels, buf),
    }
}

/// A row quantised with [`crate::color::to_int`] into `buf`: three bytes a pixel, P6's row.
fn quantise(pixels: &[Rgb], buf: &mut Vec<u8>) {
    // The table once a row, not once a channel.
    let steps = gamma_steps();
    buf.clear();
    buf.extend(pixels.iter().flat_map(|p| [steps.to_int(p.x), steps.to_int(p.y), steps.to_int(p.z)]));
}

/// A raw row must be the `want` bytes of one row of the image's width.
fn check_raw_len(raw: &[u8], want: usize) -> io::Result<()> {
    if raw.len() != want {
        let got = raw.len();
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a raw row of {got} bytes where the width takes {want}"),
        ));
    }
    Ok(())
}
