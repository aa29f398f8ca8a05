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
///
/// The same function as [`to_int_pow`], smallpt's expression, which takes a `pow` per channel
/// (most of the encoder's time, and 2.6 % of a fast 1024×768 spp 16 render's CPU time): here a
/// step function looked up in [`GammaSteps`], bit for bit the same for every input.
#[inline]
pub fn to_int(x: f64) -> u8 {
    gamma_steps().to_int(x)
}

/// smallpt's `toInt` as smallpt writes it, one `pow` per call: what [`to_int`] reproduces.
#[inline]
pub fn to_int_pow(x: f64) -> u8 {
    (clamp(x).powf(1.0 / 2.2) * 255.0 + 0.5) as i32 as u8
}

/// [`to_int_pow`] as a step function: for each k in 1..=255 the least x where it reaches k,
/// found by bisection on the bit patterns of doubles (ordered as the values are for x ≥ 0), and
/// an index from the top bits of x to the value at the start of its bucket.
///
/// **Why it is exact.** `to_int_pow` is non-decreasing: x^(1/2.2) rises with x, and `pow` is
/// within an ulp of it; rounding (·255, +0.5) and truncation keep the order. An error of an
/// ulp in `pow` could only break the order where its value lies within an ulp or two of a step,
/// that is within a few ulps of a threshold; the unit test checks a thousand ulps either side
/// of every one. Buckets are 1/256 of a binade, narrower than the gap between two steps (at
/// least 2.2/255 of x, relative, at the top): a bucket holds at most one step, so the value is
/// the bucket's, or one more from the threshold inside it (built and checked in `GammaSteps::new`).
pub struct GammaSteps {
    /// `first[k]`: the least x with `to_int_pow(x) ≥ k` (k = 1..=255); `first[0]` = −∞ and
    /// `first[256]` = +∞ as sentinels.
    first: [f64; 257],
    /// The value at the start of each bucket: [`BUCKET_BITS`] of mantissa, binades from
    /// [`LOW`] up to 1.
    bucket: Vec<u8>,
}

/// Below this every input quantises to 0 (the first step is at 1.1e-6), and the buckets start.
const LOW: f64 = 1.0 / (1u64 << 20) as f64;
/// Mantissa bits that pick a bucket within a binade.
const BUCKET_BITS: u32 = 8;

/// The table, built on first use (about 16 000 `pow` calls).
pub fn gamma_steps() -> &'static GammaSteps {
    static STEPS: std::sync::OnceLock<GammaSteps> = std::sync::OnceLock::new();
    STEPS.get_or_init(GammaSteps::new)
}

impl GammaSteps {
    fn new() -> GammaSteps {
        let mut first = [0.0; 257];
        first[0] = f64::NEG_INFINITY;
        first[256] = f64::INFINITY;
        for (k, t) in first.iter_mut().enumerate().take(256).skip(1) {
            // The least bit pattern in [0, 1] (as u64) whose value quantises to k or more.
            let (mut lo, mut hi) = (0u64, 1.0f64.to_bits());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if usize::from(to_int_pow(f64::from_bits(mid))) >= k { hi = mid } else { lo = mid + 1 }
            }
            *t = f64::from_bits(lo);
        }
        assert!(first[1] > LOW, "the first step lies above the buckets' start");
        let buckets = ((1.0f64.to_bits() - LOW.to_bits()) >> (52 - BUCKET_BITS)) as usize;
        let bucket = (0..buckets)
            .map(|i| {
                let start = f64::from_bits(LOW.to_bits() + ((i as u64) << (52 - BUCKET_BITS)));
                let end = f64::from_bits(LOW.to_bits() + ((i as u64 + 1) << (52 - BUCKET_BITS)));
                let v = first.partition_point(|&t| t <= start) - 1;
                assert!(first.get(v + 2).is_none_or(|&t| t >= end), "two steps in the bucket at {start}");
                v as u8
            })
            .collect();
        GammaSteps { first, bucket }
    }

    /// [`to_int_pow`]`(x)`, looked up.
    #[inline]
    pub fn to_int(&self, x: f64) -> u8 {
        // NaN, negatives and anything under the first step quantise to 0, as smallpt's do.
        if x.is_nan() || x < LOW {
            return 0;
        }
        if x >= 1.0 {
            return 255;
        }
        let v = self.bucket[((x.to_bits() - LOW.to_bits()) >> (52 - BUCKET_BITS)) as usize];
        v + u8::from(x >= self.first[usize::from(v) + 1])
    }
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

    /// The table and smallpt's `pow` agree a thousand ulps either side of every step (where an
    /// ulp of error in `pow` could matter), at every bucket's ends, and on a million spread inputs.
    #[test]
    fn the_gamma_table_is_smallpts_pow() {
        let steps = gamma_steps();
        let check = |x: f64| assert_eq!(steps.to_int(x), to_int_pow(x), "x = {x:e} ({:#x})", x.to_bits());
        for &t in &steps.first[1..256] {
            for d in 0..=1000u64 {
                check(f64::from_bits(t.to_bits() + d));
                check(f64::from_bits(t.to_bits() - d));
            }
        }
        for i in 0..steps.bucket.len() as u64 {
            let start = LOW.to_bits() + (i << (52 - BUCKET_BITS));
            check(f64::from_bits(start));
            check(f64::from_bits(start - 1));
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Uniform in [0, 1.25) and log-uniform down to 1e-9.
            check((s >> 11) as f64 / (1u64 << 53) as f64 * 1.25);
            check(1e-9f64.powf((s & 0xffff) as f64 / 65536.0));
        }
        for x in [f64::NAN, f64::NEG_INFINITY, -1.0, -0.0, 0.0, LOW, 1.0, 1.0 + f64::EPSILON, f64::INFINITY] {
            check(x);
        }
    }

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
