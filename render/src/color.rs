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
