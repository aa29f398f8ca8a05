//! SSE2, part of every x86-64: 4 lanes.

use super::Lanes;
use std::arch::x86_64::*;

lane_ops!(F4, __m128, _mm_add_ps, _mm_sub_ps, _mm_mul_ps, _mm_div_ps, _mm_xor_ps, _mm_set1_ps);
mask_ops!(M4, __m128, _mm_and_ps, _mm_or_ps, _mm_xor_ps, _mm_castsi128_ps(_mm_set1_epi32(-1)));

/// SSE2: 4 lanes.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Sse2(());

impl Sse2 {
    /// The token: every x86-64 CPU has SSE2.
    pub(super) fn token() -> Sse2 {
        Sse2(())
    }
}

// SAFETY for every `unsafe` block in this impl: SSE2 is part of x86-64, and slices are indexed
// with bounds checks (`p[..W]`) before their pointers are taken.
impl Lanes for Sse2 {
    const W: usize = 4;
    type F = F4;
    type M = M4;
    type U = __m128i;
    #[inline(always)]
    fn splat(self, x: f32) -> F4 {
        F4(unsafe { _mm_set1_ps(x) }) // (x, x, x, x)
    }
    #[inline(always)]
    fn load(self, p: &[f32]) -> F4 {
        F4(unsafe { _mm_loadu_ps(p[..4].as_ptr()) }) // p[0..4]
    }
    #[inline(always)]
    fn store(self, v: F4, p: &mut [f32]) {
        unsafe { _mm_storeu_ps(p[..4].as_mut_ptr(), v.0) } // p[0..4] = v
    }
    #[inline(always)]
    fn load_u(self, p: &[u32]) -> __m128i {
        unsafe { _mm_loadu_si128(p[..4].as_ptr().cast()) } // p[0..4]
    }
    #[inline(always)]
    fn store_u(self, v: __m128i, p: &mut [u32]) {
        unsafe { _mm_storeu_si128(p[..4].as_mut_ptr().cast(), v) } // p[0..4] = v
    }
    #[inline(always)]
    fn splat_u(self, x: u32) -> __m128i {
        unsafe { _mm_set1_epi32(x as i32) } // (x, x, x, x)
    }
    #[inline(always)]
    fn fma(self, a: F4, b: F4, c: F4) -> F4 {
        a * b + c // no FMA in SSE2: rounded twice
    }
    #[inline(always)]
    fn sqrt(self, a: F4) -> F4 {
        F4(unsafe { _mm_sqrt_ps(a.0) }) // √a
    }
    #[inline(always)]
    fn min(self, a: F4, b: F4) -> F4 {
        F4(unsafe { _mm_min_ps(a.0, b.0) }) // a < b ? a : b
    }
    #[inline(always)]
    fn max(self, a: F4, b: F4) -> F4 {
        F4(unsafe { _mm_max_ps(a.0, b.0) }) // a > b ? a : b
    }
    #[inline(always)]
    fn lt(self, a: F4, b: F4) -> M4 {
        M4(unsafe { _mm_cmplt_ps(a.0, b.0) }) // a < b
    }
    #[inline(always)]
    fn eq(self, a: F4, b: F4) -> M4 {
        M4(unsafe { _mm_cmpeq_ps(a.0, b.0) }) // a == b
    }
    #[inline(always)]
    fn select(self, m: M4, a: F4, b: F4) -> F4 {
        F4(unsafe { _mm_or_ps(_mm_and_ps(m.0, a.0), _mm_andnot_ps(m.0, b.0)) }) // m ? a : b
    }
    #[inline(always)]
    fn select_u(self, m: M4, a: __m128i, b: __m128i) -> __m128i {
        let m = unsafe { _mm_castps_si128(m.0) };
        unsafe { _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b)) } // m ? a : b
    }
    #[inline(always)]
    fn copysign(self, a: F4, s: F4) -> F4 {
        let sign = unsafe { _mm_set1_ps(-0.0) };
        F4(unsafe { _mm_or_ps(_mm_andnot_ps(sign, a.0), _mm_and_ps(sign, s.0)) }) // |a| · sign(s)
    }
    #[inline(always)]
    fn with_sign_of(self, a: F4, s: F4) -> F4 {
        F4(unsafe { _mm_or_ps(a.0, _mm_and_ps(_mm_set1_ps(-0.0), s.0)) }) // a · sign(s), a ≥ 0
    }
    #[inline(always)]
    fn abs(self, a: F4) -> F4 {
        F4(unsafe { _mm_andnot_ps(_mm_set1_ps(-0.0), a.0) }) // |a|
    }
    #[inline(always)]
    fn lane(self, i: usize) -> M4 {
        M4(unsafe { _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(i as i32))) }) // k == i
    }
    #[inline(always)]
    fn bits(self, m: M4) -> u32 {
        unsafe { _mm_movemask_ps(m.0) as u32 } // sign bit of each lane
    }
    #[inline(always)]
    fn lookup(self, t: &[f32; 16], i: __m128i) -> F4 {
        let mut idx = [0u32; 4];
        self.store_u(i, &mut idx);
        F4(unsafe {
            _mm_setr_ps(
                t[idx[0] as usize & 15],
                t[idx[1] as usize & 15],
                t[idx[2] as usize & 15],
                t[idx[3] as usize & 15],
            )
        }) // t[i]
    }
    #[inline(always)]
    fn xor_u(self, a: __m128i, b: __m128i) -> __m128i {
        unsafe { _mm_xor_si128(a, b) } // a ^ b
    }
    #[inline(always)]
    fn or_u(self, a: __m128i, b: __m128i) -> __m128i {
        unsafe { _mm_or_si128(a, b) } // a | b
    }
    #[inline(always)]
    fn shl_u<const N: i32>(self, a: __m128i) -> __m128i {
        unsafe { _mm_slli_epi32::<N>(a) } // a << N
    }
    #[inline(always)]
    fn shr_u<const N: i32>(self, a: __m128i) -> __m128i {
        unsafe { _mm_srli_epi32::<N>(a) } // a >> N
    }
    #[inline(always)]
    fn mul_u(self, a: __m128i, b: __m128i) -> __m128i {
        // SSE2 has no 32-bit `mullo`: two 32×32→64 multiplies and the low halves put back.
        unsafe {
            let even = _mm_mul_epu32(a, b); // a[0]·b[0], a[2]·b[2] as u64
            let odd = _mm_mul_epu32(_mm_srli_epi64::<32>(a), _mm_srli_epi64::<32>(b)); // a[1]·b[1], a[3]·b[3]
            let (even, odd) = (_mm_shuffle_epi32::<0b1000>(even), _mm_shuffle_epi32::<0b1000>(odd)); // low halves
            _mm_unpacklo_epi32(even, odd) // (a·b) mod 2^32
        }
    }
    #[inline(always)]
    fn to_f(self, v: __m128i) -> F4 {
        F4(unsafe { _mm_cvtepi32_ps(v) }) // v as f32
    }
    #[inline(always)]
    fn add_u(self, a: __m128i, b: __m128i) -> __m128i {
        unsafe { _mm_add_epi32(a, b) } // a + b mod 2^32
    }
    #[inline(always)]
    fn sub_u(self, a: __m128i, b: __m128i) -> __m128i {
        unsafe { _mm_sub_epi32(a, b) } // a - b mod 2^32
    }
    #[inline(always)]
    fn to_u(self, v: F4) -> __m128i {
        unsafe { _mm_cvttps_epi32(v.0) } // v truncated to an integer
    }
}
