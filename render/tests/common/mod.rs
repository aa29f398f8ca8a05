//! What several test files share: a PFM decoder (the library only encodes PFM).
#![allow(dead_code)]

use std::io;

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
pub fn read_pfm(bytes: &[u8]) -> io::Result<PfmImage> {
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
