//! SIMD lanes for the fast engine: the only module with `unsafe` code in the crate.
//!
//! [`Lanes`] is a token type per instruction set. A token exists only once the CPU is known to
//! have its features ([`SimdPath::usable`] is checked in [`run`], the one entry point), and lane
//! vectors are only made from a token, so the safe methods below never execute an instruction
//! the CPU lacks. Every intrinsic line names the scalar math it computes; [`Scalar`] is the same
//! math one lane wide, the path every other one is tested against.

use super::kernel::{Kernel, Work};
use std::ops::{Add, BitAnd, BitOr, Div, Mul, Neg, Not, Sub};
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// An instruction-set path, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdPath {
    /// Plain Rust, one path at a time.
    Scalar,
    /// SSE2 (every x86-64): 4 paths in lanes.
    Sse2,
    /// AVX2 + FMA: 8 paths in lanes.
    Avx2,
    /// AVX-512F: 16 paths in lanes.
    Avx512,
}

/// Environment variable that forces a narrower path: `avx512`, `avx2`, `sse2` or `scalar`.
pub const SIMD_ENV: &str = "RENDER_SIMD";

impl SimdPath {
    /// Every path, narrowest first.
    pub const ALL: [SimdPath; 4] = [SimdPath::Scalar, SimdPath::Sse2, SimdPath::Avx2, SimdPath::Avx512];

    /// The name used in `RENDER_SIMD` and in logs.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            SimdPath::Sse2 => "sse2",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// Parses a `RENDER_SIMD` value.
    pub fn from_name(s: &str) -> Option<SimdPath> {
        SimdPath::ALL.into_iter().find(|p| p.name() == s.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run the path (checked at run time, cached by std).
    pub fn usable(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                SimdPath::Scalar | SimdPath::Sse2 => true,
                SimdPath::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                SimdPath::Avx512 => is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == SimdPath::Scalar
        }
    }

    /// The widest usable path no wider than `self`: what actually runs when `self` is asked for.
    pub fn clamp_to_cpu(self) -> SimdPath {
        SimdPath::ALL.into_iter().rev().find(|p| *p <= self && p.usable()).unwrap_or(SimdPath::Scalar)
    }

    /// The path renders use: the widest the CPU has, narrowed by `RENDER_SIMD` if set. Detected
    /// once per process.
    pub fn detected() -> SimdPath {
        static PATH: OnceLock<SimdPath> = OnceLock::new();
        *PATH.get_or_init(|| {
            let asked = std::env::var(SIMD_ENV).ok().and_then(|v| SimdPath::from_name(&v));
            asked.unwrap_or(SimdPath::Avx512).clamp_to_cpu()
        })
    }
}

/// Runs one batch of samples on `path` (narrowed to what the CPU has).
pub(super) fn run(path: SimdPath, k: &Kernel, work: &mut Work) {
    match path.clamp_to_cpu() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `clamp_to_cpu` returned this path, so the CPU has AVX-512F.
        SimdPath::Avx512 => unsafe { run_avx512(k, work) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `clamp_to_cpu` returned this path, so the CPU has AVX2 and FMA.
        SimdPath::Avx2 => unsafe { run_avx2(k, work) },
        #[cfg(target_arch = "x86_64")]
        SimdPath::Sse2 => k.run(Sse2(()), work),
        _ => k.run(Scalar, work),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2(k: &Kernel, work: &mut Work) {
    k.run(Avx2(()), work)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512(k: &Kernel, work: &mut Work) {
    k.run(Avx512(()), work)
}

/// Operations on `W` lanes of f32 (`F`), masks (`M`) and u32 (`U`). Tokens are zero-sized.
pub(super) trait Lanes: Copy {
    /// Number of lanes.
    const W: usize;
    /// W floats.
    type F: Copy
        + Add<Output = Self::F>
        + Sub<Output = Self::F>
        + Mul<Output = Self::F>
        + Div<Output = Self::F>
        + Neg<Output = Self::F>;
    /// W booleans.
    type M: Copy + BitAnd<Output = Self::M> + BitOr<Output = Self::M> + Not<Output = Self::M>;
    /// W u32.
    type U: Copy;
    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::F;
    /// Lanes from `p[..W]`.
    fn load(self, p: &[f32]) -> Self::F;
    /// Lanes into `p[..W]`.
    fn store(self, v: Self::F, p: &mut [f32]);
    /// u32 lanes from `p[..W]`.
    fn load_u(self, p: &[u32]) -> Self::U;
    /// u32 lanes into `p[..W]`.
    fn store_u(self, v: Self::U, p: &mut [u32]);
    /// Every lane `x`.
    fn splat_u(self, x: u32) -> Self::U;
    /// `a*b + c` (fused where the path has FMA).
    fn fma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// √a.
    fn sqrt(self, a: Self::F) -> Self::F;
    /// min(a, b).
    fn min(self, a: Self::F, b: Self::F) -> Self::F;
    /// max(a, b).
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    /// a < b (false on NaN).
    fn lt(self, a: Self::F, b: Self::F) -> Self::M;
    /// m ? a : b.
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
    /// m ? a : b on u32 lanes.
    fn select_u(self, m: Self::M, a: Self::U, b: Self::U) -> Self::U;
    /// |a| with the sign of `s`.
    fn copysign(self, a: Self::F, s: Self::F) -> Self::F;
    /// `a` (non-negative, or NaN) with the sign of `s`: one `or` where [`Lanes::copysign`] needs
    /// three operations.
    fn with_sign_of(self, a: Self::F, s: Self::F) -> Self::F;
    /// |a|.
    fn abs(self, a: Self::F) -> Self::F;
    /// True in lane `i` only (`i < W`).
    fn lane(self, i: usize) -> Self::M;
    /// Lane `i` of `v`.
    #[inline(always)]
    fn get(self, v: Self::F, i: usize) -> f32 {
        let mut a = [0.0; 16];
        self.store(v, &mut a);
        a[i]
    }
    /// Bit i set when lane i of `m` is true.
    fn bits(self, m: Self::M) -> u32;
    /// `t[i]` per lane (`i < 16`).
    fn lookup(self, t: &[f32; 16], i: Self::U) -> Self::F;
    /// `t[i]` per lane where `i < 8`; some entry of `t` where not (AVX2: one permute, not two).
    #[inline(always)]
    fn lookup8(self, t: &[f32; 16], i: Self::U) -> Self::F {
        self.lookup(t, i)
    }
    /// One xorshift32 step per lane (`s ^= s<<13; s ^= s>>17; s ^= s<<5`) and the top 24 bits of
    /// the new state as a float in [0, 1): the same numbers as [`super::kernel::xorshift`].
    fn uniform(self, s: &mut Self::U) -> Self::F;
    /// A random stream's first state: `hash32(h ^ v) | 1` per lane (never zero), the same
    /// numbers as [`super::kernel::hash32`].
    fn seed(self, h: Self::U, v: Self::U) -> Self::U;
    /// u32 lanes (below 2^31) as floats.
    fn to_f(self, v: Self::U) -> Self::F;
}

/// One lane, plain Rust.
#[derive(Clone, Copy)]
pub(super) struct Scalar;

impl Lanes for Scalar {
    const W: usize = 1;
    type F = f32;
    type M = bool;
    type U = u32;
    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn load(self, p: &[f32]) -> f32 {
        p[0]
    }
    #[inline(always)]
    fn store(self, v: f32, p: &mut [f32]) {
        p[0] = v
    }
    #[inline(always)]
    fn load_u(self, p: &[u32]) -> u32 {
        p[0]
    }
    #[inline(always)]
    fn store_u(self, v: u32, p: &mut [u32]) {
        p[0] = v
    }
    #[inline(always)]
    fn splat_u(self, x: u32) -> u32 {
        x
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    fn sqrt(self, a: f32) -> f32 {
        a.sqrt()
    }
    #[inline(always)]
    fn min(self, a: f32, b: f32) -> f32 {
        if a < b { a } else { b }
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        if a > b { a } else { b }
    }
    #[inline(always)]
    fn lt(self, a: f32, b: f32) -> bool {
        a < b
    }
    #[inline(always)]
    fn select(self, m: bool, a: f32, b: f32) -> f32 {
        if m { a } else { b }
    }
    #[inline(always)]
    fn select_u(self, m: bool, a: u32, b: u32) -> u32 {
        if m { a } else { b }
    }
    #[inline(always)]
    fn copysign(self, a: f32, s: f32) -> f32 {
        a.copysign(s)
    }
    #[inline(always)]
    fn with_sign_of(self, a: f32, s: f32) -> f32 {
        f32::from_bits(a.to_bits() | (s.to_bits() & 0x8000_0000))
    }
    #[inline(always)]
    fn abs(self, a: f32) -> f32 {
        a.abs()
    }
    #[inline(always)]
    fn lane(self, i: usize) -> bool {
        i == 0
    }
    #[inline(always)]
    fn bits(self, m: bool) -> u32 {
        m as u32
    }
    #[inline(always)]
    fn lookup(self, t: &[f32; 16], i: u32) -> f32 {
        t[i as usize & 15]
    }
    #[inline(always)]
    fn uniform(self, s: &mut u32) -> f32 {
        super::kernel::xorshift(s)
    }
    #[inline(always)]
    fn seed(self, h: u32, v: u32) -> u32 {
        super::kernel::hash32(h ^ v) | 1
    }
    #[inline(always)]
    fn to_f(self, v: u32) -> f32 {
        v as f32
    }
}

/// Lane vector wrappers: arithmetic operators over one intrinsic each.
#[cfg(target_arch = "x86_64")]
macro_rules! lane_ops {
    ($f:ident, $raw:ty, $add:ident, $sub:ident, $mul:ident, $div:ident, $xor:ident, $set1:ident) => {
        /// Float lanes of one path.
        #[derive(Clone, Copy)]
        pub(super) struct $f($raw);
        // SAFETY (all four): a value of this type exists only inside the path's kernel, which runs
        // only on a CPU that has the path's features (see `run`).
        impl Add for $f {
            type Output = $f;
            #[inline(always)]
            fn add(self, b: $f) -> $f {
                $f(unsafe { $add(self.0, b.0) }) // a + b
            }
        }
        impl Sub for $f {
            type Output = $f;
            #[inline(always)]
            fn sub(self, b: $f) -> $f {
                $f(unsafe { $sub(self.0, b.0) }) // a - b
            }
        }
        impl Mul for $f {
            type Output = $f;
            #[inline(always)]
            fn mul(self, b: $f) -> $f {
                $f(unsafe { $mul(self.0, b.0) }) // a * b
            }
        }
        impl Div for $f {
            type Output = $f;
            #[inline(always)]
            fn div(self, b: $f) -> $f {
                $f(unsafe { $div(self.0, b.0) }) // a / b
            }
        }
        impl Neg for $f {
            type Output = $f;
            #[inline(always)]
            fn neg(self) -> $f {
                $f(unsafe { $xor(self.0, $set1(-0.0)) }) // -a (flip the sign bit)
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
lane_ops!(F4, __m128, _mm_add_ps, _mm_sub_ps, _mm_mul_ps, _mm_div_ps, _mm_xor_ps, _mm_set1_ps);
#[cfg(target_arch = "x86_64")]
lane_ops!(F8, __m256, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_xor_ps, _mm256_set1_ps);
#[cfg(target_arch = "x86_64")]
lane_ops!(F16, __m512, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_div_ps, xor512, _mm512_set1_ps);

/// `a ^ b` on float bits (AVX-512F has no `xor_ps`; DQ does).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn xor512(a: __m512, b: __m512) -> __m512 {
    // SAFETY: only reached from AVX-512 lanes, see `run`.
    unsafe { _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))) }
}

/// Vector masks as float lanes (all ones / all zeros), with `&`, `|`, `!`.
#[cfg(target_arch = "x86_64")]
macro_rules! mask_ops {
    ($m:ident, $raw:ty, $and:ident, $or:ident, $xor:ident, $ones:expr) => {
        /// Mask lanes of one path: all bits set where true.
        #[derive(Clone, Copy)]
        pub(super) struct $m($raw);
        impl BitAnd for $m {
            type Output = $m;
            #[inline(always)]
            fn bitand(self, b: $m) -> $m {
                $m(unsafe { $and(self.0, b.0) }) // a && b
            }
        }
        impl BitOr for $m {
            type Output = $m;
            #[inline(always)]
            fn bitor(self, b: $m) -> $m {
                $m(unsafe { $or(self.0, b.0) }) // a || b
            }
        }
        impl Not for $m {
            type Output = $m;
            #[inline(always)]
            fn not(self) -> $m {
                $m(unsafe { $xor(self.0, $ones) }) // !a
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mask_ops!(M4, __m128, _mm_and_ps, _mm_or_ps, _mm_xor_ps, _mm_castsi128_ps(_mm_set1_epi32(-1)));
#[cfg(target_arch = "x86_64")]
mask_ops!(M8, __m256, _mm256_and_ps, _mm256_or_ps, _mm256_xor_ps, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));

/// AVX-512 masks are bit masks, one bit per lane.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct M16(__mmask16);

#[cfg(target_arch = "x86_64")]
impl BitAnd for M16 {
    type Output = M16;
    #[inline(always)]
    fn bitand(self, b: M16) -> M16 {
        M16(self.0 & b.0) // a && b
    }
}
#[cfg(target_arch = "x86_64")]
impl BitOr for M16 {
    type Output = M16;
    #[inline(always)]
    fn bitor(self, b: M16) -> M16 {
        M16(self.0 | b.0) // a || b
    }
}
#[cfg(target_arch = "x86_64")]
impl Not for M16 {
    type Output = M16;
    #[inline(always)]
    fn not(self) -> M16 {
        M16(!self.0) // !a
    }
}

/// SSE2: 4 lanes.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Sse2(());

// SAFETY for every `unsafe` block in this impl: SSE2 is part of x86-64, and slices are indexed
// with bounds checks (`p[..W]`) before their pointers are taken.
#[cfg(target_arch = "x86_64")]
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
    fn uniform(self, s: &mut __m128i) -> F4 {
        unsafe {
            *s = _mm_xor_si128(*s, _mm_slli_epi32::<13>(*s)); // s ^= s << 13
            *s = _mm_xor_si128(*s, _mm_srli_epi32::<17>(*s)); // s ^= s >> 17
            *s = _mm_xor_si128(*s, _mm_slli_epi32::<5>(*s)); // s ^= s << 5
            let top = _mm_cvtepi32_ps(_mm_srli_epi32::<8>(*s)); // (s >> 8) as f32
            F4(_mm_mul_ps(top, _mm_set1_ps(1.0 / 16_777_216.0))) // / 2^24
        }
    }
    #[inline(always)]
    fn seed(self, h: __m128i, v: __m128i) -> __m128i {
        // SSE2 has no 32-bit `mullo`: two 32×32→64 multiplies and the low halves put back.
        #[inline(always)]
        fn mul(a: __m128i, c: u32) -> __m128i {
            unsafe {
                let c = _mm_set1_epi32(c as i32);
                let even = _mm_mul_epu32(a, c); // a[0]·c, a[2]·c as u64
                let odd = _mm_mul_epu32(_mm_srli_epi64::<32>(a), c); // a[1]·c, a[3]·c as u64
                let (even, odd) = (_mm_shuffle_epi32::<0b1000>(even), _mm_shuffle_epi32::<0b1000>(odd)); // low halves
                _mm_unpacklo_epi32(even, odd) // (a·c) mod 2^32
            }
        }
        unsafe {
            let mut x = _mm_xor_si128(h, v); // x = h ^ v
            x = _mm_xor_si128(x, _mm_srli_epi32::<16>(x)); // x ^= x >> 16
            x = mul(x, 0x7feb_352d); // x *= 0x7feb352d
            x = _mm_xor_si128(x, _mm_srli_epi32::<15>(x)); // x ^= x >> 15
            x = mul(x, 0x846c_a68b); // x *= 0x846ca68b
            x = _mm_xor_si128(x, _mm_srli_epi32::<16>(x)); // x ^= x >> 16
            _mm_or_si128(x, _mm_set1_epi32(1)) // x | 1
        }
    }
    #[inline(always)]
    fn to_f(self, v: __m128i) -> F4 {
        F4(unsafe { _mm_cvtepi32_ps(v) }) // v as f32
    }
}

/// AVX2 + FMA: 8 lanes.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Avx2(());

// SAFETY for every `unsafe` block in this impl: an `Avx2` token is only made inside `run_avx2`,
// which `run` calls only when the CPU has AVX2 and FMA; slices are bounds-checked (`p[..W]`).
#[cfg(target_arch = "x86_64")]
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
    fn uniform(self, s: &mut __m256i) -> F8 {
        unsafe {
            *s = _mm256_xor_si256(*s, _mm256_slli_epi32::<13>(*s)); // s ^= s << 13
            *s = _mm256_xor_si256(*s, _mm256_srli_epi32::<17>(*s)); // s ^= s >> 17
            *s = _mm256_xor_si256(*s, _mm256_slli_epi32::<5>(*s)); // s ^= s << 5
            let top = _mm256_cvtepi32_ps(_mm256_srli_epi32::<8>(*s)); // (s >> 8) as f32
            F8(_mm256_mul_ps(top, _mm256_set1_ps(1.0 / 16_777_216.0))) // / 2^24
        }
    }
    #[inline(always)]
    fn seed(self, h: __m256i, v: __m256i) -> __m256i {
        unsafe {
            let mut x = _mm256_xor_si256(h, v); // x = h ^ v
            x = _mm256_xor_si256(x, _mm256_srli_epi32::<16>(x)); // x ^= x >> 16
            x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb_352d)); // x *= 0x7feb352d
            x = _mm256_xor_si256(x, _mm256_srli_epi32::<15>(x)); // x ^= x >> 15
            x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x846c_a68b_u32 as i32)); // x *= 0x846ca68b
            x = _mm256_xor_si256(x, _mm256_srli_epi32::<16>(x)); // x ^= x >> 16
            _mm256_or_si256(x, _mm256_set1_epi32(1)) // x | 1
        }
    }
    #[inline(always)]
    fn to_f(self, v: __m256i) -> F8 {
        F8(unsafe { _mm256_cvtepi32_ps(v) }) // v as f32
    }
}

/// AVX-512F: 16 lanes.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct Avx512(());

// SAFETY for every `unsafe` block in this impl: an `Avx512` token is only made inside
// `run_avx512`, which `run` calls only when the CPU has AVX-512F; slices are bounds-checked.
#[cfg(target_arch = "x86_64")]
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
    fn uniform(self, s: &mut __m512i) -> F16 {
        unsafe {
            *s = _mm512_xor_si512(*s, _mm512_slli_epi32::<13>(*s)); // s ^= s << 13
            *s = _mm512_xor_si512(*s, _mm512_srli_epi32::<17>(*s)); // s ^= s >> 17
            *s = _mm512_xor_si512(*s, _mm512_slli_epi32::<5>(*s)); // s ^= s << 5
            let top = _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(*s)); // (s >> 8) as f32
            F16(_mm512_mul_ps(top, _mm512_set1_ps(1.0 / 16_777_216.0))) // / 2^24
        }
    }
    #[inline(always)]
    fn seed(self, h: __m512i, v: __m512i) -> __m512i {
        unsafe {
            let mut x = _mm512_xor_si512(h, v); // x = h ^ v
            x = _mm512_xor_si512(x, _mm512_srli_epi32::<16>(x)); // x ^= x >> 16
            x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb_352d)); // x *= 0x7feb352d
            x = _mm512_xor_si512(x, _mm512_srli_epi32::<15>(x)); // x ^= x >> 15
            x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x846c_a68b_u32 as i32)); // x *= 0x846ca68b
            x = _mm512_xor_si512(x, _mm512_srli_epi32::<16>(x)); // x ^= x >> 16
            _mm512_or_si512(x, _mm512_set1_epi32(1)) // x | 1
        }
    }
    #[inline(always)]
    fn to_f(self, v: __m512i) -> F16 {
        F16(unsafe { _mm512_cvtepi32_ps(v) }) // v as f32
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::engine::fast::kernel::{hash32, xorshift};

    /// Every lane of `seed`, `uniform` and `to_f` gives the scalar numbers.
    fn integer_ops_match_scalar<L: Lanes>(l: L) {
        let mut state = 0x1234_5678u32;
        for _ in 0..256 {
            let (mut h, mut v) = ([0u32; 16], [0u32; 16]);
            for i in 0..L::W {
                h[i] = hash32(state.wrapping_add(i as u32));
                v[i] = hash32(h[i] ^ 0x9e37_79b9);
            }
            state = hash32(state);
            let mut s = l.seed(l.load_u(&h), l.load_u(&v));
            let (mut got_s, mut got_u, mut got_f) = ([0u32; 16], [0f32; 16], [0f32; 16]);
            l.store_u(s, &mut got_s);
            l.store(l.uniform(&mut s), &mut got_u);
            l.store(l.to_f(l.load_u(&v.map(|x| x >> 1))), &mut got_f);
            for i in 0..L::W {
                let mut want = hash32(h[i] ^ v[i]) | 1;
                assert_eq!(got_s[i], want, "seed, lane {i}");
                assert_eq!(got_u[i], xorshift(&mut want), "uniform, lane {i}");
                assert_eq!(got_f[i], (v[i] >> 1) as f32, "to_f, lane {i}");
            }
        }
    }

    /// `lane(i)` picks lane i alone, `get` reads it, `lookup8` reads the first 8 entries.
    fn lane_ops_pick_one_lane<L: Lanes>(l: L) {
        let (v, t): ([f32; 16], [f32; 16]) =
            (std::array::from_fn(|i| i as f32 + 0.5), std::array::from_fn(|i| -(i as f32)));
        let idx: [u32; 16] = std::array::from_fn(|i| (i as u32 * 5 + 3) % 8);
        let (mut looked, mut got) = ([0f32; 16], [0f32; 16]);
        l.store(l.lookup8(&t, l.load_u(&idx)), &mut looked);
        for i in 0..L::W {
            assert_eq!(looked[i], t[idx[i] as usize], "lookup8, lane {i}");
            assert_eq!(l.get(l.load(&v), i), v[i], "get, lane {i}");
            l.store(l.select(l.lane(i), l.splat(-1.0), l.load(&v)), &mut got);
            for j in 0..L::W {
                assert_eq!(got[j], if j == i { -1.0 } else { v[j] }, "lane({i}), lane {j}");
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn on_avx2() {
        integer_ops_match_scalar(Avx2(()));
        lane_ops_pick_one_lane(Avx2(()));
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn on_avx512() {
        integer_ops_match_scalar(Avx512(()));
        lane_ops_pick_one_lane(Avx512(()));
    }

    #[test]
    fn lanes_seed_and_draw_the_scalar_numbers() {
        integer_ops_match_scalar(Scalar);
        integer_ops_match_scalar(Sse2(()));
        lane_ops_pick_one_lane(Scalar);
        lane_ops_pick_one_lane(Sse2(()));
        if SimdPath::Avx2.usable() {
            // SAFETY: the CPU has AVX2 and FMA.
            unsafe { on_avx2() }
        }
        if SimdPath::Avx512.usable() {
            // SAFETY: the CPU has AVX-512F.
            unsafe { on_avx512() }
        } else {
            eprintln!("avx512: skipped, this CPU lacks AVX-512F");
        }
    }
}
