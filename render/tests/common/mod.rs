//! What several test files share: a PFM decoder (the library only encodes PFM), the reference
//! renders, the SIMD paths to test, renders through the fast engine and the row driver, and the
//! image statistics the statistical tests compare.
#![allow(dead_code)]

use render::engine::Engine;
use render::engine::fast::{Fast, SimdPath};
use render::{CancelToken, RenderOptions, RenderRequest, Rgb, RowOrder, Scene, render_rows};
use std::io;
use std::path::PathBuf;

/// A reference render of smallpt.cpp from `../shared/reference`.
pub fn reference(name: &str) -> PfmImage {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference").join(name);
    read_pfm(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The SIMD paths this CPU has; the others are reported as skipped. The scalar path is held to
/// the SSE2 one bit for bit instead: it is the same arithmetic one lane wide, and four times
/// slower.
pub fn paths() -> Vec<SimdPath> {
    [SimdPath::Sse2, SimdPath::Avx2, SimdPath::Avx512]
        .into_iter()
        .filter(|p| {
            let ok = p.usable();
            if !ok {
                eprintln!("skipped: this CPU has no {} path", p.name());
            }
            ok
        })
        .collect()
}

/// Every row of `req` on `scene`, through the fast engine (`fast` or `nee`) on `path`, rows in
/// parallel, top row first.
pub fn render_on(path: SimdPath, scene: &Scene, req: &RenderRequest) -> Vec<Rgb> {
    use rayon::prelude::*;
    let engine = Fast::with_path(scene, req, path).unwrap();
    assert_eq!(engine.path(), path);
    (0..req.height)
        .into_par_iter()
        .flat_map_iter(|y| {
            let mut row = vec![Rgb::ZERO; req.width as usize];
            engine.render_row(y, &mut row, &CancelToken::new()).unwrap();
            row
        })
        .collect()
}

/// An image's values as f32, as a PFM holds them.
pub fn as_f32(img: &[Rgb]) -> Vec<[f32; 3]> {
    img.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect()
}

/// Per-channel means.
pub fn means(img: &[[f32; 3]]) -> [f64; 3] {
    std::array::from_fn(|c| img.iter().map(|p| f64::from(p[c])).sum::<f64>() / img.len() as f64)
}

/// Root-mean-square difference over every channel of every pixel.
pub fn rmse(a: &[[f32; 3]], b: &[[f32; 3]]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 =
        a.iter().zip(b).flat_map(|(p, q)| (0..3).map(move |c| (f64::from(p[c]) - f64::from(q[c])).powi(2))).sum();
    (se / (a.len() * 3) as f64).sqrt()
}

/// `req` rendered by the row driver on `threads` threads in row order `order`, top row first.
pub fn render_with(threads: usize, order: RowOrder, req: &RenderRequest) -> Vec<Rgb> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
    let mut img = vec![Rgb::ZERO; (req.width * req.height) as usize];
    let w = req.width as usize;
    render_rows(&Scene::default(), req, &opts, order, |row, px| {
        img[row as usize * w..][..w].copy_from_slice(px);
        Ok(())
    })
    .unwrap();
    img
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
