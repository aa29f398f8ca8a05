//! Camera sampling rules shared by the engines: the 2×2 subpixel grid and the tent filter.

/// The 2×2 subpixels as (sx, sy), in smallpt's order: sy outer, sx inner.
pub const SUBPIXELS: [(f64, f64); 4] = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)];

/// smallpt's tent filter: maps `r` uniform in [0, 2) to an offset in [-1, 1) with a triangular
/// density, so each subpixel's samples spread over its neighbours' area too.
#[inline(always)]
pub fn tent(r: f64) -> f64 {
    if r < 1.0 { r.sqrt() - 1.0 } else { 1.0 - (2.0 - r).sqrt() }
}
