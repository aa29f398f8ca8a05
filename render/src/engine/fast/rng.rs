//! Position-keyed random numbers, written once over lanes: each camera sample seeds its own
//! xorshift32 stream by chaining a 32-bit avalanche hash over (seed, y, x, index·4 + subpixel),
//! so a sample's numbers depend on its position only — not on threads, tiling or its lane.
//! 32-bit so every lane width computes it (SIMD has no 64-bit multiply before AVX-512).

use super::lanes::{Lanes, Scalar};

/// Wellons' "lowbias32" per lane: a 32-bit integer hash with full avalanche.
#[inline(always)]
pub(super) fn hash<L: Lanes>(l: L, x: L::U) -> L::U {
    let x = l.xor_u(x, l.shr_u::<16>(x));
    let x = l.mul_u(x, l.splat_u(0x7feb_352d));
    let x = l.xor_u(x, l.shr_u::<15>(x));
    let x = l.mul_u(x, l.splat_u(0x846c_a68b));
    l.xor_u(x, l.shr_u::<16>(x))
}

/// [`hash`] of one value.
#[inline(always)]
pub(super) fn hash32(x: u32) -> u32 {
    hash(Scalar, x)
}

/// A stream's first state from key `h` and value `v`: `hash(h ^ v) | 1` (never zero, which
/// xorshift would never leave).
#[inline(always)]
pub(super) fn seed<L: Lanes>(l: L, h: L::U, v: L::U) -> L::U {
    l.or_u(hash(l, l.xor_u(h, v)), l.splat_u(1))
}

/// One xorshift32 step per lane and the top 24 bits of the new state as a float in [0, 1).
#[inline(always)]
pub(super) fn uniform<L: Lanes>(l: L, s: &mut L::U) -> L::F {
    *s = l.xor_u(*s, l.shl_u::<13>(*s));
    *s = l.xor_u(*s, l.shr_u::<17>(*s));
    *s = l.xor_u(*s, l.shl_u::<5>(*s));
    l.to_f(l.shr_u::<8>(*s)) * l.splat(1.0 / 16_777_216.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fast::lanes::{LaneJob, MAX_W, SimdPath, dispatch};

    /// lowbias32 as published.
    fn lowbias32(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^ (x >> 16)
    }

    struct Streams;

    impl LaneJob for Streams {
        type Output = ();
        #[inline(always)]
        fn run<L: Lanes>(self, l: L) {
            let mut state = 0x1234_5678u32;
            for _ in 0..256 {
                let (mut h, mut v) = ([0u32; MAX_W], [0u32; MAX_W]);
                for i in 0..L::W {
                    h[i] = lowbias32(state.wrapping_add(i as u32));
                    v[i] = lowbias32(h[i] ^ 0x9e37_79b9);
                }
                state = lowbias32(state);
                let mut s = seed(l, l.load_u(&h), l.load_u(&v));
                let (mut got_s, mut got_u) = ([0u32; MAX_W], [0f32; MAX_W]);
                l.store_u(s, &mut got_s);
                l.store(uniform(l, &mut s), &mut got_u);
                for i in 0..L::W {
                    let mut want = lowbias32(h[i] ^ v[i]) | 1;
                    assert_eq!(got_s[i], want, "seed, lane {i}");
                    want ^= want << 13;
                    want ^= want >> 17;
                    want ^= want << 5;
                    assert_eq!(got_u[i], (want >> 8) as f32 / 16_777_216.0, "uniform, lane {i}");
                }
            }
        }
    }

    /// Every path seeds and draws the published hash's and xorshift32's numbers.
    #[test]
    fn every_path_draws_the_same_numbers() {
        assert_eq!(hash32(0x1234_5678), lowbias32(0x1234_5678));
        for path in SimdPath::ALL.into_iter().filter(|p| p.usable()) {
            dispatch(path, Streams);
        }
    }
}
