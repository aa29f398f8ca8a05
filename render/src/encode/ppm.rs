//! ASCII PPM (P3) in smallpt's exact layout, written from the quantised bytes (so its raw row
//! is P6's). Binary PPM (P6) is a header and raw rows: [`Raw`](super::raw::Raw).

use super::{RowEncoder, check_raw_len, header, quantise, raw_row_len};
use crate::color::Rgb;
use crate::request::Format;
use std::io::{self, Write};

/// ASCII PPM (P3) exactly as smallpt prints it: `P3\n<w> <h>\n255\n`, then `"%d %d %d "` per
/// pixel, no newlines, no trailing newline.
pub struct P3<W: Write> {
    out: W,
    bytes: Vec<u8>,
    buf: Vec<u8>,
    row_len: usize,
}

impl<W: Write> P3<W> {
    /// Writes the header.
    pub fn new(width: u32, height: u32, mut out: W) -> io::Result<Self> {
        out.write_all(header(Format::P3, width, height).as_bytes())?;
        Ok(P3 {
            out,
            bytes: Vec::with_capacity(3 * width as usize),
            buf: Vec::with_capacity(12 * width as usize),
            row_len: raw_row_len(Format::P3, width),
        })
    }
}

impl<W: Write> RowEncoder for P3<W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        let mut bytes = std::mem::take(&mut self.bytes);
        quantise(pixels, &mut bytes);
        let result = self.write_raw_row(&bytes);
        self.bytes = bytes;
        result
    }
    fn write_raw_row(&mut self, raw: &[u8]) -> io::Result<()> {
        check_raw_len(raw, self.row_len)?;
        self.buf.clear();
        for p in raw.chunks_exact(3) {
            write!(self.buf, "{} {} {} ", p[0], p[1], p[2])?;
        }
        self.out.write_all(&self.buf)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}
