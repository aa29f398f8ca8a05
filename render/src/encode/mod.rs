//! Streaming image encoders: each takes rows in the order [`row_order`] gives and writes them out
//! as they come, holding at most one row (PNG: plus its compressor's window), never the image.
//!
//! PFM stores rows bottom to top; rather than buffer the image, the driver renders PFM bottom-up
//! ([`RowOrder::BottomUp`]), so every format streams in constant memory.

pub mod pfm;
pub mod png;
pub mod ppm;

use crate::engine::classic::clamp;
use crate::request::Format;
use crate::stream::{Rgb, RowOrder};
use std::io::{self, Write};

/// An encoder that receives an image one row at a time.
pub trait RowEncoder {
    /// Encodes the next row (in [`row_order`]) and writes it out.
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()>;
    /// Writes whatever the format needs after the last row and flushes.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// The order `format` stores rows in, and so the order its encoder wants them.
pub fn row_order(format: Format) -> RowOrder {
    match format {
        Format::Pfm => RowOrder::BottomUp,
        Format::Ppm | Format::P3 | Format::Png => RowOrder::TopDown,
    }
}

/// An encoder for `format` writing to `out`; the header is written at once. `out` is owned
/// (`'static`) because the `png` crate's stream writer owns its writer.
pub fn encoder<W: Write + 'static>(format: Format, width: u32, height: u32, out: W) -> io::Result<Box<dyn RowEncoder>> {
    Ok(match format {
        Format::Ppm => Box::new(ppm::P6::new(width, height, out)?),
        Format::P3 => Box::new(ppm::P3::new(width, height, out)?),
        Format::Png => Box::new(png::Png::new(width, height, out)?),
        Format::Pfm => Box::new(pfm::Pfm::new(width, height, out)?),
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

/// How large `format` at `width`×`height` can be, known before rendering.
pub fn output_size(format: Format, width: u32, height: u32) -> OutputSize {
    let pixels = u64::from(width) * u64::from(height);
    let header = format!("P6\n{width} {height}\n255\n").len() as u64;
    match format {
        Format::Ppm => OutputSize::Exact(header + 3 * pixels),
        // "255 255 255 " is the longest a pixel gets.
        Format::P3 => OutputSize::AtMost(header + 12 * pixels),
        Format::Pfm => OutputSize::Exact(format!("PF\n{width} {height}\n-1.0\n").len() as u64 + 12 * pixels),
        Format::Png => OutputSize::AtMost(png::max_size(width, height)),
    }
}

/// smallpt's `toInt`: clamp, gamma 2.2, scale, round half up by truncating `x + 0.5` (C's `int()`).
#[inline]
pub fn to_int(x: f64) -> u8 {
    (clamp(x).powf(1.0 / 2.2) * 255.0 + 0.5) as i32 as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_int_matches_smallpt() {
        assert_eq!(to_int(-1.0), 0);
        assert_eq!(to_int(0.0), 0);
        assert_eq!(to_int(1.0), 255);
        assert_eq!(to_int(7.0), 255);
        assert_eq!(to_int(f64::NAN), 0, "NaN is neither < 0 nor > 1: smallpt passes it to pow, int() of NaN");
        // 0.5^(1/2.2) * 255 + .5 = 186.57...
        assert_eq!(to_int(0.5), 186);
    }
}
