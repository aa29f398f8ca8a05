//! The formats whose body is their carrier's rows as they are: binary PPM (P6, three quantised
//! bytes a pixel) and PFM (little-endian f32 RGB of the linear values, 12 bytes a pixel, rows
//! bottom to top).
//!
//! PFM's rows must arrive bottom row first (see
//! [`Format::row_order`](crate::format::Format::row_order)); the driver renders them in that
//! order, so nothing is buffered beyond one row.

use super::{RowEncoder, check_raw_len, header, raw_row, raw_row_len};
use crate::color::Rgb;
use crate::format::Format;
use std::io::{self, Write};

/// P6 or PFM writer: the format's [`header`], then each row as [`raw_row`] makes it.
pub struct Raw<W: Write> {
    format: Format,
    out: W,
    buf: Vec<u8>,
    row_len: usize,
}

impl<W: Write> Raw<W> {
    /// Writes the header of `format`, which must be its own carrier (P6's `Ppm`, or `Pfm`).
    pub fn new(format: Format, width: u32, height: u32, mut out: W) -> io::Result<Self> {
        assert_eq!(format.carrier(), format, "{format:?} is not written as raw rows");
        out.write_all(header(format, width, height).as_bytes())?;
        let row_len = raw_row_len(format, width);
        Ok(Raw { format, out, buf: Vec::with_capacity(row_len), row_len })
    }
}

impl<W: Write> RowEncoder for Raw<W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        raw_row(self.format, pixels, &mut self.buf);
        self.out.write_all(&self.buf)
    }
    fn write_raw_row(&mut self, raw: &[u8]) -> io::Result<()> {
        check_raw_len(raw, self.row_len)?;
        self.out.write_all(raw)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}
