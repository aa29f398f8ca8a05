//! PPM: binary P6, and P3 in smallpt's exact ASCII layout.

use super::{RowEncoder, to_int};
use crate::stream::Rgb;
use std::io::{self, Write};

/// Binary PPM (P6): the header, then three bytes per pixel.
pub struct P6<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> P6<W> {
    /// Writes the header.
    pub fn new(width: u32, height: u32, mut out: W) -> io::Result<Self> {
        write!(out, "P6\n{width} {height}\n255\n")?;
        Ok(P6 { out, buf: Vec::with_capacity(3 * width as usize) })
    }
}

impl<W: Write> RowEncoder for P6<W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend(pixels.iter().flat_map(|p| [to_int(p.x), to_int(p.y), to_int(p.z)]));
        self.out.write_all(&self.buf)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

/// ASCII PPM (P3) exactly as smallpt prints it: `P3\n<w> <h>\n255\n`, then `"%d %d %d "` per
/// pixel, no newlines, no trailing newline.
pub struct P3<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> P3<W> {
    /// Writes the header.
    pub fn new(width: u32, height: u32, mut out: W) -> io::Result<Self> {
        write!(out, "P3\n{width} {height}\n255\n")?;
        Ok(P3 { out, buf: Vec::with_capacity(12 * width as usize) })
    }
}

impl<W: Write> RowEncoder for P3<W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        self.buf.clear();
        for p in pixels {
            write!(self.buf, "{} {} {} ", to_int(p.x), to_int(p.y), to_int(p.z))?;
        }
        self.out.write_all(&self.buf)
    }
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}
