//! PNG: 8-bit RGB through the `png` crate's stream writer, a row at a time; its raw row is P6's.

use super::{RowEncoder, check_raw_len, quantise, raw_row_len};
use crate::color::Rgb;
use crate::format::Format;
use std::io::{self, Write};

/// Streaming PNG writer.
pub struct Png<'w, W: Write> {
    stream: ::png::StreamWriter<'w, W>,
    buf: Vec<u8>,
    row_len: usize,
}

fn io_err(e: ::png::EncodingError) -> io::Error {
    match e {
        ::png::EncodingError::IoError(e) => e,
        other => io::Error::other(other),
    }
}

impl<W: Write> Png<'static, W> {
    /// Writes the signature and header chunk.
    pub fn new(width: u32, height: u32, out: W) -> io::Result<Self> {
        let mut enc = ::png::Encoder::new(out, width, height);
        enc.set_color(::png::ColorType::Rgb);
        enc.set_depth(::png::BitDepth::Eight);
        // Fast deflate: this output is a preview over HTTP; a render costs far more than the bytes.
        enc.set_compression(::png::Compression::Fast);
        let stream = enc.write_header().map_err(io_err)?.into_stream_writer().map_err(io_err)?;
        let row_len = raw_row_len(Format::Png, width);
        Ok(Png { stream, buf: Vec::with_capacity(row_len), row_len })
    }
}

impl<W: Write> RowEncoder for Png<'_, W> {
    fn write_row(&mut self, pixels: &[Rgb]) -> io::Result<()> {
        quantise(pixels, &mut self.buf);
        self.stream.write_all(&self.buf)
    }
    fn write_raw_row(&mut self, raw: &[u8]) -> io::Result<()> {
        check_raw_len(raw, self.row_len)?;
        self.stream.write_all(raw)
    }
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.stream.finish().map_err(io_err)
    }
}

/// An upper bound on the PNG's size whatever the pixels: the filtered data stored uncompressed
/// (deflate's worst case is its stored blocks: 5 bytes per 64 KiB block, plus zlib's 6), in IDAT
/// chunks of 12 bytes' overhead each, plus signature, IHDR and IEND — with a generous margin.
pub fn max_size(width: u32, height: u32) -> u64 {
    let raw = u64::from(height) * (1 + 3 * u64::from(width));
    raw + raw / 64 + 4096
}
