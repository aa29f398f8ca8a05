//! AVX2 + FMA: 8 lanes.

use super::Lanes;
use super::paired::Paired;
use std::arch::x86_64::*;

lane_ops!(F8, __m256, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_xor_ps, _mm256_set1_ps);
mask_ops!(M8, __m256, _mm256_and_ps, _mm256_or_ps, _mm256_xor_ps, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));

/// AVX2 + FMA: 8 lanes.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Avx2(());

/// Runs `job` on AVX2 lanes, two vectors per value ([`Paired`]: 16 paths in flight), compiled
/// with AVX2 and FMA.
///
/// Why paired, with only 16 registers: the second vector fills the waits of the first's
/// dependency chain (square root, then divide, in the wall test; the normal, then the basis's
/// divide, in the shading). Two vectors of path state spill, and the spills take the load and
/// store ports; since the step's wall test became one wall, the overlap buys more than they
/// cost (BENCHMARKS.md, issue 16).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn enter<J: super::LaneJob>(job: J) -> J::Output {
    job.run(Paired(Avx2(())))
}

// SAFETY for every `unsafe` block in this impl: an `Avx2` token is only made in `enter`, which
// `dispatch` calls only when the CPU has AVX2 and FMA; slices are bounds-checked (`p[..W]`).
impl Lanes for Avx2 {
    const W: usize = 8;
    type F = F8;
    type M = M8;
    type U = __m256i;
    #[inline(always)]
    fn splat(self, x: f32) -> F8 {
        F8(unsafe { _mm256_set1_ps(x) }) // (x, …, x)
    }
    #[inline(always)]
    fn load(self, p: &[f32]) -> F8 {
        F8(unsafe { _mm256_loadu_ps(p[..8].as_ptr()) }) // p[0..8]
    }
    #[inline(always)]
    fn store(self, v: F8, p: &mut [f32]) {
        unsafe { _mm256_storeu_ps(p[..8].as_mut_ptr(), v.0) } // p[0..8] = v
    }
    #[inline(always)]
    fn load_u(self, p: &[u32]) -> __m256i {
        unsafe { _mm256_loadu_si256(p[..8].as_ptr().cast()) } // p[0..8]
    }
    #[inline(always)]
    fn store_u(self, v: __m256i, p: &mut [u32]) {
        unsafe { _mm256_storeu_si256(p[..8].as_mut_ptr().cast(), v) } // p[0..8] = v
    }
    #[inline(always)]
    fn splat_u(self, x: u32) -> __m256i {
        unsafe { _mm256_set1_epi32(x as i32) } // (x, …, x)
    }
    #[inline(always)]
    fn fma(self, a: F8, b: F8, c: F8) -> F8 {
        F8(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) }) // a*b + c, rounded once
    }
    #[inline(always)]
    fn sqrt(self, a: F8) -> F8 {
        F8(unsafe { _mm256_sqrt_ps(a.0) }) // √a
    }
    #[inline(always)]
    fn min(self, a: F8, b: F8) -> F8 {
        F8(unsafe { _mm256_min_ps(a.0, b.0) }) // a < b ? a : b
    }
    #[inline(always)]
    fn max(self, a: F8, b: F8) -> F8 {
        F8(unsafe { _mm256_max_ps(a.0, b.0) }) // a > b ? a : b
    }
    #[inline(always)]
    fn lt(self, a: F8, b: F8) -> M8 {
        M8(unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a.0, b.0) }) // a < b
    }
    #[inline(always)]
    fn eq(self, a: F8, b: F8) -> M8 {
        M8(unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(a.0, b.0) }) // a == b
    }
    #[inline(always)]
    fn select(self, m: M8, a: F8, b: F8) -> F8 {
        F8(unsafe { _mm256_blendv_ps(b.0, a.0, m.0) }) // m ? a : b
    }
    #[inline(always)]
    fn select_u(self, m: M8, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_blendv_epi8(b, a, _mm256_castps_si256(m.0)) } // m ? a : b
    }
    #[inline(always)]
    fn copysign(self, a: F8, s: F8) -> F8 {
        let sign = unsafe { _mm256_set1_ps(-0.0) };
        F8(unsafe { _mm256_or_ps(_mm256_andnot_ps(sign, a.0), _mm256_and_ps(sign, s.0)) }) // |a| · sign(s)
    }
    #[inline(always)]
    fn with_sign_of(self, a: F8, s: F8) -> F8 {
        F8(unsafe { _mm256_or_ps(a.0, _mm256_and_ps(_mm256_set1_ps(-0.0), s.0)) }) // a · sign(s), a ≥ 0
    }
    #[inline(always)]
    fn abs(self, a: F8) -> F8 {
        F8(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a.0) }) // |a|
    }
    #[inline(always)]
    fn lane(self, i: usize) -> M8 {
        let k = unsafe { _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7) };
        M8(unsafe { _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(i as i32))) }) // k == i
    }
    #[inline(always)]
    fn bits(self, m: M8) -> u32 {
        unsafe { _mm256_movemask_ps(m.0) as u32 } // sign bit of each lane
    }
    #[inline(always)]
    fn lookup(self, t: &[f32; 16], i: __m256i) -> F8 {
        unsafe {
            let lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t.as_ptr()), i); // t[i & 7]
            let hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t[8..].as_ptr()), i); // t[8 + (i & 7)]
            let upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(i, _mm256_set1_epi32(7))); // i > 7
            F8(_mm256_blendv_ps(lo, hi, upper)) // i > 7 ? hi : lo
        }
    }
    #[inline(always)]
    fn lookup8(self, t: &[f32; 16], i: __m256i) -> F8 {
        F8(unsafe { _mm256_permutevar8x32_ps(_mm256_loadu_ps(t.as_ptr()), i) }) // t[i & 7]
    }
    #[inline(always)]
    fn xor_u(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_xor_si256(a, b) } // a ^ b
    }
    #[inline(always)]
    fn or_u(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_or_si256(a, b) } // a | b
    }
    #[inline(always)]
    fn shl_u<const N: i32>(self, a: __m256i) -> __m256i {
        unsafe { _mm256_slli_epi32::<N>(a) } // a << N
    }
    #[inline(always)]
    fn shr_u<const N: i32>(self, a: __m256i) -> __m256i {
        unsafe { _mm256_srli_epi32::<N>(a) } // a >> N
    }
    #[inline(always)]
    fn mul_u(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_mullo_epi32(a, b) } // a · b mod 2^32
    }
    #[inline(always)]
    fn to_f(self, v: __m256i) -> F8 {
        F8(unsafe { _mm256_cvtepi32_ps(v) }) // v as f32
    }
    #[inline(always)]
    fn add_u(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_add_epi32(a, b) } // a + b mod 2^32
    }
    #[inline(always)]
    fn sub_u(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_sub_epi32(a, b) } // a - b mod 2^32
    }
    #[inline(always)]
    fn to_u(self, v: F8) -> __m256i {
        unsafe { _mm256_cvttps_epi32(v.0) } // v truncated to an integer
    }
    const EXPAND: bool = true;
    #[inline(always)]
    fn mask_of(self, bits: u32) -> M8 {
        unsafe {
            let bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
            let m = _mm256_and_si256(_mm256_set1_epi32(bits as i32), bit); // bits & (1 << i)
            M8(_mm256_castsi256_ps(_mm256_cmpeq_epi32(m, bit))) // bit i set
        }
    }
    #[inline(always)]
    fn expand(self, m: M8, src: &[f32], old: F8) -> F8 {
        unsafe {
            let v = _mm256_loadu_ps(src[..8].as_ptr()); // src[0..8]
            F8(_mm256_blendv_ps(old.0, _mm256_permutevar8x32_ps(v, self.rank(self.bits(m))), m.0)) // m ? src[rank] : old
        }
    }
    #[inline(always)]
    fn expand_u(self, m: M8, src: &[u32], old: __m256i) -> __m256i {
        unsafe {
            let v = _mm256_loadu_si256(src[..8].as_ptr().cast()); // src[0..8]
            let picked = _mm256_permutevar8x32_epi32(v, self.rank(self.bits(m))); // src[rank]
            _mm256_blendv_epi8(old, picked, _mm256_castps_si256(m.0)) // m ? src[rank] : old
        }
    }
}

/// Per 8-bit lane mask, each lane's rank among the mask's lanes (the number of set bits below
/// it): where `expand` takes its element from. AVX2 has no `vexpand`; a load and one permute
/// do its work.
static RANKS: [[u8; 8]; 256] = {
    let mut t = [[0; 8]; 256];
    let mut bits = 0;
    while bits < 256 {
        let mut i = 0;
        while i < 8 {
            t[bits][i] = (bits & ((1 << i) - 1)).count_ones() as u8;
            i += 1;
        }
        bits += 1;
    }
    t
};

impl Avx2 {
    /// [`RANKS`] of `bits` (below 256) as eight u32 lanes.
    #[inline(always)]
    fn rank(self, bits: u32) -> __m256i {
        let row = &RANKS[bits as usize & 255];
        // SAFETY: as in the `Lanes` impl (the token means AVX2); the load reads the row's 8 bytes.
        unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(row.as_ptr().cast())) } // row[i] as u32
    }
}
