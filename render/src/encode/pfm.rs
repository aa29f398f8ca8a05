//! PFM: little-endian f32 RGB of the linear values, rows bottom to top.
//!
//! Rows must arrive bottom row first (see [`Format::row_order`](crate::format::Format::row_order));
//! the driver renders them in that order, so nothing is buffered beyond one row.

use super::{RowEncoder, header, raw_len_error, raw_row};
use crate::color::Rgb;
use crate::request::Format;
use std::io::{self, Write};

/// PFM writer: header `PF\n<w> <h>\n-1.0\n` (negative scale: little-endian), then 12 bytes a pixel.
pub struct Pfm<W: Write> {
    out: W,
    buf: Vec<u8>,
    row_len: usize,
}

impl<W: Write> Pfm<W> {
    /// Writes the header.
    pub fn new(width: u32, height: u32, mut out: W) -> io::Result<Self> {
        out.write_all(header(Format::Pfm, width, height).as_bytes())?;
        Ok(Pfm { out, buf: Vec::with_capacity(12 * width as usize), row_len: 12 * width as usize })
    }
}

impl<W: Write> RowEncoder for Pfm<W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        raw_row(Format::Pfm, pixels, &mut self.buf);
        self.out.write_all(&self.buf)
    }
    fn write_raw_row(&mut self, raw: &[u8]) -> io::Result<()> {
        if raw.len() != self.row_len {
            return Err(raw_len_error(raw.len(), self.row_len));
        }
        self.out.write_all(raw)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}
