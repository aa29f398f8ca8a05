//! PFM: little-endian f32 RGB of the linear values, rows bottom to top.
//!
//! Rows must arrive bottom row first (see [`super::row_order`]); the driver renders them in that
//! order, so nothing is buffered beyond one row.

use super::{RowEncoder, header, raw_len_error};
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
        self.buf.clear();
        for p in pixels {
            for c in [p.x, p.y, p.z] {
                self.buf.extend_from_slice(&(c as f32).to_le_bytes());
            }
        }
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

/// A decoded PFM image: linear RGB, rows top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub struct PfmImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width*height` RGB triples, the top row first.
    pub pixels: Vec<[f32; 3]>,
}

/// Reads a 3-channel PFM (either byte order), returning rows top to bottom.
pub fn read(bytes: &[u8]) -> io::Result<PfmImage> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("not a colour PFM: {m}"));
    let mut fields = Vec::new();
    let mut pos = 0;
    // Four whitespace-separated header tokens, then exactly one whitespace byte.
    while fields.len() < 4 {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            return Err(bad("short header"));
        }
        fields.push(std::str::from_utf8(&bytes[start..pos]).map_err(|_| bad("header"))?);
    }
    pos += 1;
    if fields[0] != "PF" {
        return Err(bad("magic"));
    }
    let num = |s: &str| s.parse::<usize>().map_err(|_| bad("size"));
    let (width, height) = (num(fields[1])?, num(fields[2])?);
    let scale: f32 = fields[3].parse().map_err(|_| bad("scale"))?;
    let data = bytes.get(pos..).ok_or_else(|| bad("no data"))?;
    if data.len() != width * height * 12 {
        return Err(bad("data length"));
    }
    let le = scale < 0.0;
    let mut pixels = vec![[0f32; 3]; width * height];
    for (i, chunk) in data.chunks_exact(12).enumerate() {
        let (x, y_up) = (i % width, i / width);
        let px = &mut pixels[(height - 1 - y_up) * width + x];
        for (c, b) in px.iter_mut().zip(chunk.chunks_exact(4)) {
            let b = [b[0], b[1], b[2], b[3]];
            *c = if le { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) };
        }
    }
    Ok(PfmImage { width, height, pixels })
}
