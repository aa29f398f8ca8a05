//! AVX-512: 16 lanes, with bit masks.

use super::Lanes;
use super::paired::Paired;
use std::arch::x86_64::*;
use std::ops::{BitAnd, BitOr, Not};

lane_ops!(F16, __m512, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps, xor512, _mm512_set1_ps);

/// `a ^ b` on float bits (AVX-512F has no `xor_ps`; DQ does).
#[inline(always)]
unsafe fn xor512(a: __m512, b: __m512) -> __m512 {
    // SAFETY: only reached from AVX-512 lanes, see `enter`.
    unsafe { _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))) }
}

/// AVX-512 masks are bit masks, one bit per lane.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct M16(__mmask16);

impl BitAnd for M16 {
    type Output = M16;
    #[inline(always)]
    fn bitand(self, b: M16) -> M16 {
        M16(self.0 & b.0) // a && b
    }
}
impl BitOr for M16 {
    type Output = M16;
    #[inline(always)]
    fn bitor(self, b: M16) -> M16 {
        M16(self.0 | b.0) // a || b
    }
}
impl Not for M16 {
    type Output = M16;
    #[inline(always)]
    fn not(self) -> M16 {
        M16(!self.0) // !a
    }
}

/// AVX-512: 16 lanes.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Avx512(());

/// Runs `job` on AVX-512 lanes, two vectors per value ([`Paired`]: 32 paths in flight), compiled
/// with AVX-512 F, DQ, VL and BW and the bit instructions every AVX-512 CPU has (BMI1, BMI2,
/// POPCNT, LZCNT: the lane masks' counts and scans are one instruction each).
///
/// Why paired: the second vector fills the waits of the first's dependency chain (see
/// [`Paired`]). Two vectors of paths do not fit 32 registers either, but the spills take the load
/// and store ports, while 512-bit arithmetic has only two ports of its own (BENCHMARKS.md,
/// issue 16).
///
/// # Safety
/// The CPU must have those features ([`SimdPath::usable`](super::SimdPath::usable)).
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,bmi1,bmi2,popcnt,lzcnt")]
pub(super) unsafe fn enter<J: super::LaneJob>(job: J) -> J::Output {
    job.run(Paired(Avx512(())))
}

// SAFETY for every `unsafe` block in this impl: an `Avx512` token is only made in `enter`, which
// `dispatch` calls only when the CPU has its features; slices are bounds-checked.
impl Lanes for Avx512 {
    const W: usize = 16;
    type F = F16;
    type M = M16;
    type U = __m512i;
    #[inline(always)]
    fn splat(self, x: f32) -> F16 {
        F16(unsafe { _mm512_set1_ps(x) }) // (x, …, x)
    }
    #[inline(always)]
    fn load(self, p: &[f32]) -> F16 {
        F16(unsafe { _mm512_loadu_ps(p[..16].as_ptr()) }) // p[0..16]
    }
    #[inline(always)]
    fn store(self, v: F16, p: &mut [f32]) {
        unsafe { _mm512_storeu_ps(p[..16].as_mut_ptr(), v.0) } // p[0..16] = v
    }
    #[inline(always)]
    fn load_u(self, p: &[u32]) -> __m512i {
        unsafe { _mm512_loadu_si512(p[..16].as_ptr().cast()) } // p[0..16]
    }
    #[inline(always)]
    fn store_u(self, v: __m512i, p: &mut [u32]) {
        unsafe { _mm512_storeu_si512(p[..16].as_mut_ptr().cast(), v) } // p[0..16] = v
    }
    #[inline(always)]
    fn splat_u(self, x: u32) -> __m512i {
        unsafe { _mm512_set1_epi32(x as i32) } // (x, …, x)
    }
    #[inline(always)]
    fn fma(self, a: F16, b: F16, c: F16) -> F16 {
        F16(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) }) // a*b + c, rounded once
    }
    #[inline(always)]
    fn sqrt(self, a: F16) -> F16 {
        F16(unsafe { _mm512_sqrt_ps(a.0) }) // √a
    }
    #[inline(always)]
    fn min(self, a: F16, b: F16) -> F16 {
        F16(unsafe { _mm512_min_ps(a.0, b.0) }) // a < b ? a : b
    }
    #[inline(always)]
    fn max(self, a: F16, b: F16) -> F16 {
        F16(unsafe { _mm512_max_ps(a.0, b.0) }) // a > b ? a : b
    }
    #[inline(always)]
    fn lt(self, a: F16, b: F16) -> M16 {
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a.0, b.0) }) // a < b
    }
    #[inline(always)]
    fn eq(self, a: F16, b: F16) -> M16 {
        M16(unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a.0, b.0) }) // a == b
    }
    #[inline(always)]
    fn select(self, m: M16, a: F16, b: F16) -> F16 {
        F16(unsafe { _mm512_mask_blend_ps(m.0, b.0, a.0) }) // m ? a : b
    }
    #[inline(always)]
    fn select_u(self, m: M16, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_mask_blend_epi32(m.0, b, a) } // m ? a : b
    }
    #[inline(always)]
    fn copysign(self, a: F16, s: F16) -> F16 {
        unsafe {
            let abs = _mm512_and_si512(_mm512_castps_si512(a.0), _mm512_set1_epi32(i32::MAX)); // |a|
            let sign = _mm512_and_si512(_mm512_castps_si512(s.0), _mm512_set1_epi32(i32::MIN)); // sign(s)
            F16(_mm512_castsi512_ps(_mm512_or_si512(abs, sign))) // |a| · sign(s)
        }
    }
    #[inline(always)]
    fn with_sign_of(self, a: F16, s: F16) -> F16 {
        unsafe {
            let sign = _mm512_and_si512(_mm512_castps_si512(s.0), _mm512_set1_epi32(i32::MIN)); // sign(s)
            F16(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a.0), sign))) // a · sign(s), a ≥ 0
        }
    }
    #[inline(always)]
    fn abs(self, a: F16) -> F16 {
        F16(unsafe { _mm512_abs_ps(a.0) }) // |a|
    }
    #[inline(always)]
    fn lane(self, i: usize) -> M16 {
        M16(1 << i) // bit i
    }
    #[inline(always)]
    fn bits(self, m: M16) -> u32 {
        u32::from(m.0)
    }
    #[inline(always)]
    fn lookup(self, t: &[f32; 16], i: __m512i) -> F16 {
        F16(unsafe { _mm512_permutexvar_ps(i, _mm512_loadu_ps(t.as_ptr())) }) // t[i & 15]
    }
    #[inline(always)]
    fn xor_u(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_xor_si512(a, b) } // a ^ b
    }
    #[inline(always)]
    fn or_u(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_or_si512(a, b) } // a | b
    }
    #[inline(always)]
    fn shl_u<const N: i32>(self, a: __m512i) -> __m512i {
        // (A per-lane shift by a constant splat: LLVM emits the immediate form; `slli` wants a u32
        // constant, which a generic i32 cannot be cast to on stable Rust.)
        unsafe { _mm512_sllv_epi32(a, _mm512_set1_epi32(N)) } // a << N
    }
    #[inline(always)]
    fn shr_u<const N: i32>(self, a: __m512i) -> __m512i {
        unsafe { _mm512_srlv_epi32(a, _mm512_set1_epi32(N)) } // a >> N
    }
    #[inline(always)]
    fn mul_u(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_mullo_epi32(a, b) } // a · b mod 2^32
    }
    #[inline(always)]
    fn to_f(self, v: __m512i) -> F16 {
        F16(unsafe { _mm512_cvtepi32_ps(v) }) // v as f32
    }
    #[inline(always)]
    fn add_u(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_add_epi32(a, b) } // a + b mod 2^32
    }
    #[inline(always)]
    fn sub_u(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_sub_epi32(a, b) } // a - b mod 2^32
    }
    #[inline(always)]
    fn to_u(self, v: F16) -> __m512i {
        unsafe { _mm512_cvttps_epi32(v.0) } // v truncated to an integer
    }
    const EXPAND: bool = true;
    #[inline(always)]
    fn mask_of(self, bits: u32) -> M16 {
        M16(bits as u16) // lane i = bit i
    }
    #[inline(always)]
    fn expand(self, m: M16, src: &[f32], old: F16) -> F16 {
        // vexpandps reads only as many elements as the mask has lanes.
        let src = &src[..m.0.count_ones() as usize];
        F16(unsafe { _mm512_mask_expandloadu_ps(old.0, m.0, src.as_ptr()) }) // m lanes ← src[0..]
    }
    #[inline(always)]
    fn expand_u(self, m: M16, src: &[u32], old: __m512i) -> __m512i {
        let src = &src[..m.0.count_ones() as usize];
        unsafe { _mm512_mask_expandloadu_epi32(old, m.0, src.as_ptr().cast()) } // m lanes ← src[0..]
    }
}
