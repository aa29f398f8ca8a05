//! Pixel values: linear RGB, and smallpt's clamp and quantisation to 8 bits. A leaf: engines and
//! encoders both use it.

use crate::vec3::Vec3;

/// A linear RGB pixel value.
pub type Rgb = Vec3;

/// Clamp to [0, 1] (NaN stays NaN, as with smallpt's `clamp`).
#[inline]
pub fn clamp(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

/// smallpt's `toInt`: clamp, gamma 2.2, scale, round half up by truncating `x + 0.5` (C's `int()`).
#[inline]
pub fn to_int(x: f64) -> u8 {
    (clamp(x).powf(1.0 / 2.2) * 255.0 + 0.5) as i32 as u8
}

/// One pixel's four subpixels' running radiance sums, in f64 as smallpt sums them: what a
/// progressive render keeps between passes.
pub type SubpixelSums = [[f64; 3]; 4];

/// smallpt's pixel from its subpixels' sums over `n` samples each: each subpixel's mean clamped
/// to [0, 1], then the four averaged.
#[inline]
pub fn resolve(sums: &SubpixelSums, n: u32) -> Rgb {
    let inv = 1.0 / f64::from(n);
    let mut c = Vec3::ZERO;
    for s in sums {
        let r = s.map(|v| clamp(v * inv));
        c = c + Vec3::new(r[0], r[1], r[2]) * 0.25;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_int_is_smallpts() {
        assert_eq!(to_int(-1.0), 0);
        assert_eq!(to_int(0.0), 0);
        assert_eq!(to_int(1.0), 255);
        assert_eq!(to_int(7.0), 255);
        assert_eq!(to_int(f64::NAN), 0, "NaN is neither < 0 nor > 1: smallpt passes it to pow, int() of NaN");
        // 0.5^(1/2.2) * 255 + .5 = 186.57...
        assert_eq!(to_int(0.5), 186);
    }
}
