//! The instruction-set layer: lanes of f32, u32 and masks for each SIMD width, and the dispatch
//! onto them. The only module with `unsafe` code in the crate.
//!
//! [`Lanes`] is a token type per instruction set (one file each). A token exists only once the
//! CPU is known to have its features ([`SimdPath::usable`] is checked in [`dispatch`], the one
//! entry point), and lane vectors are only made from a token, so the safe methods never execute
//! an instruction the CPU lacks. Every intrinsic line names the scalar math it computes;
//! [`Scalar`] is the same math one lane wide, the path every other one is tested against.
//!
//! The primitives are generic (arithmetic, compares, blends, table lookups, integer shifts and
//! multiplies): what the path tracer does with them is written once, above this layer.

/// Lane vector wrappers: arithmetic operators over one intrinsic each.
#[cfg(target_arch = "x86_64")]
macro_rules! lane_ops {
    ($f:ident, $raw:ty, $add:ident, $sub:ident, $mul:ident, $div:ident, $xor:ident, $set1:ident) => {
        /// Float lanes of one path.
        #[derive(Clone, Copy)]
        pub(in crate::engine::fast) struct $f($raw);
        // SAFETY (all four): a value of this type exists only inside the path's kernel, which runs
        // only on a CPU that has the path's features (see `dispatch`).
        impl ::std::ops::Add for $f {
            type Output = $f;
            #[inline(always)]
            fn add(self, b: $f) -> $f {
                $f(unsafe { $add(self.0, b.0) }) // a + b
            }
        }
        impl ::std::ops::Sub for $f {
            type Output = $f;
            #[inline(always)]
            fn sub(self, b: $f) -> $f {
                $f(unsafe { $sub(self.0, b.0) }) // a - b
            }
        }
        impl ::std::ops::Mul for $f {
            type Output = $f;
            #[inline(always)]
            fn mul(self, b: $f) -> $f {
                $f(unsafe { $mul(self.0, b.0) }) // a * b
            }
        }
        impl ::std::ops::Div for $f {
            type Output = $f;
            #[inline(always)]
            fn div(self, b: $f) -> $f {
                $f(unsafe { $div(self.0, b.0) }) // a / b
            }
        }
        impl ::std::ops::Neg for $f {
            type Output = $f;
            #[inline(always)]
            fn neg(self) -> $f {
                $f(unsafe { $xor(self.0, $set1(-0.0)) }) // -a (flip the sign bit)
            }
        }
    };
}

/// Vector masks as float lanes (all ones / all zeros), with `&`, `|`, `!`.
#[cfg(target_arch = "x86_64")]
macro_rules! mask_ops {
    ($m:ident, $raw:ty, $and:ident, $or:ident, $xor:ident, $ones:expr) => {
        /// Mask lanes of one path: all bits set where true.
        #[derive(Clone, Copy)]
        pub(in crate::engine::fast) struct $m($raw);
        impl ::std::ops::BitAnd for $m {
            type Output = $m;
            #[inline(always)]
            fn bitand(self, b: $m) -> $m {
                $m(unsafe { $and(self.0, b.0) }) // a && b
            }
        }
        impl ::std::ops::BitOr for $m {
            type Output = $m;
            #[inline(always)]
            fn bitor(self, b: $m) -> $m {
                $m(unsafe { $or(self.0, b.0) }) // a || b
            }
        }
        impl ::std::ops::Not for $m {
            type Output = $m;
            #[inline(always)]
            fn not(self) -> $m {
                $m(unsafe { $xor(self.0, $ones) }) // !a
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod paired;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod sse2;

pub(super) use scalar::Scalar;

use std::ops::{Add, BitAnd, BitOr, Div, Mul, Neg, Not, Sub};
use std::sync::OnceLock;

/// The widest lane count: buffers sized for any path hold this many lanes.
pub(super) const MAX_W: usize = 32;

/// An instruction-set path, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdPath {
    /// Plain Rust, one path at a time.
    Scalar,
    /// SSE2 (every x86-64): 4 paths in lanes.
    Sse2,
    /// AVX2 + FMA: 16 paths, in two vectors of 8 lanes.
    Avx2,
    /// AVX-512 (F, DQ, VL, BW): 32 paths, in two vectors of 16 lanes.
    Avx512,
}

/// Environment variable that forces a narrower path: `avx512`, `avx2`, `sse2` or `scalar`.
pub const SIMD_ENV: &str = "RENDER_SIMD";

/// A `RENDER_SIMD` value that names no path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {names}, got `{0}`", names = SimdPath::names())]
pub struct UnknownSimdPath(pub String);

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

    /// The arithmetic the path's bytes come from: `fma` (AVX-512, AVX2: each multiply-add fused,
    /// rounded once) or `mul-add` (SSE2, scalar: rounded twice). Paths of one arithmetic render a
    /// request to the same bytes (tested); the two arithmetics give different bytes of the same
    /// expected image, so a fan-out merges only bands of one.
    pub fn arithmetic(self) -> &'static str {
        match self {
            SimdPath::Avx512 | SimdPath::Avx2 => "fma",
            SimdPath::Sse2 | SimdPath::Scalar => "mul-add",
        }
    }

    /// Every path's name, widest first: what `RENDER_SIMD` may be.
    fn names() -> String {
        SimdPath::ALL.map(SimdPath::name).into_iter().rev().collect::<Vec<_>>().join(", ")
    }

    /// Parses a `RENDER_SIMD` value.
    pub fn from_name(s: &str) -> Option<SimdPath> {
        SimdPath::ALL.into_iter().find(|p| p.name() == s.trim().to_ascii_lowercase())
    }

    /// The path a `RENDER_SIMD` value asks for: none when it is empty, an error when it names
    /// no path (the server and the CLI refuse to start on it rather than run another path).
    pub fn requested(value: &str) -> Result<Option<SimdPath>, UnknownSimdPath> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        SimdPath::from_name(value).map(Some).ok_or_else(|| UnknownSimdPath(value.to_string()))
    }

    /// Whether this CPU can run the path (checked at run time, cached by std).
    pub fn usable(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                SimdPath::Scalar | SimdPath::Sse2 => true,
                SimdPath::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                SimdPath::Avx512 => {
                    is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512dq")
                        && is_x86_feature_detected!("avx512vl")
                        && is_x86_feature_detected!("avx512bw")
                        && is_x86_feature_detected!("bmi1")
                        && is_x86_feature_detected!("bmi2")
                        && is_x86_feature_detected!("popcnt")
                        && is_x86_feature_detected!("lzcnt")
                }
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
            let asked = std::env::var(SIMD_ENV).ok().and_then(|v| SimdPath::requested(&v).ok().flatten());
            asked.unwrap_or(SimdPath::Avx512).clamp_to_cpu()
        })
    }
}

/// Work written once over [`Lanes`], run on whichever path [`dispatch`] picks. `run` must be
/// `#[inline(always)]` (as everything it calls on lanes): that is how it is compiled with the
/// path's target features.
pub(super) trait LaneJob {
    /// What the work returns.
    type Output;
    /// Does the work on lanes `l`.
    fn run<L: Lanes>(self, l: L) -> Self::Output;
}

/// Runs `job` on `path`, narrowed to what the CPU has.
pub(super) fn dispatch<J: LaneJob>(path: SimdPath, job: J) -> J::Output {
    match path.clamp_to_cpu() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `clamp_to_cpu` returned this path, so the CPU has its features (`usable`).
        SimdPath::Avx512 => unsafe { avx512::enter(job) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `clamp_to_cpu` returned this path, so the CPU has AVX2 and FMA.
        SimdPath::Avx2 => unsafe { avx2::enter(job) },
        #[cfg(target_arch = "x86_64")]
        // Not paired: on a quiet host two SSE2 vectors ran 9 % faster, on a busy one (the core
        // shared) 2–9 % slower (BENCHMARKS.md, issue 16).
        SimdPath::Sse2 => job.run(sse2::Sse2::token()),
        _ => job.run(Scalar),
    }
}

/// Operations on `W` lanes of f32 (`F`), masks (`M`) and u32 (`U`). Tokens are zero-sized.
pub(super) trait Lanes: Copy {
    /// Number of lanes.
    const W: usize;
    /// A [`Lanes::bits`] mask with every lane set.
    const ALL: u32 = if Self::W >= 32 { u32::MAX } else { (1 << Self::W) - 1 };
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
    /// a == b (false on NaN).
    fn eq(self, a: Self::F, b: Self::F) -> Self::M;
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
        let mut a = [0.0; MAX_W];
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
    /// a ^ b.
    fn xor_u(self, a: Self::U, b: Self::U) -> Self::U;
    /// a | b.
    fn or_u(self, a: Self::U, b: Self::U) -> Self::U;
    /// a << N.
    fn shl_u<const N: i32>(self, a: Self::U) -> Self::U;
    /// a >> N (logical).
    fn shr_u<const N: i32>(self, a: Self::U) -> Self::U;
    /// a · b mod 2³².
    fn mul_u(self, a: Self::U, b: Self::U) -> Self::U;
    /// u32 lanes (below 2^31) as floats.
    fn to_f(self, v: Self::U) -> Self::F;
    /// a + b mod 2³².
    fn add_u(self, a: Self::U, b: Self::U) -> Self::U;
    /// a − b mod 2³².
    fn sub_u(self, a: Self::U, b: Self::U) -> Self::U;
    /// Float lanes in [0, 2³¹) truncated to integers.
    fn to_u(self, v: Self::F) -> Self::U;
    /// (0, 1, …, W − 1).
    #[inline(always)]
    fn iota_u(self) -> Self::U {
        const IOTA: [u32; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        self.load_u(&IOTA)
    }
    /// Whether [`Lanes::mask_of`] and the expands are a few instructions on this path (AVX-512's
    /// bit masks and `vexpand`, AVX2's table of ranks and one permute), so the trace loop refills
    /// finished lanes all at once rather than lane by lane. The defaults below are correct on
    /// every path, for tests, and slow.
    const EXPAND: bool = false;
    /// The mask with lane i true where bit i of `bits` is set.
    #[inline(always)]
    fn mask_of(self, bits: u32) -> Self::M {
        let mut m = self.lt(self.splat(0.0), self.splat(0.0));
        for i in (0..Self::W).filter(|i| bits >> i & 1 == 1) {
            m = m | self.lane(i);
        }
        m
    }
    /// The lanes of `m`, lowest first, take `src[0]`, `src[1]`, …; the others keep `old`. `src`
    /// holds at least W elements, so that a path may read W and pick (the ones past the mask's
    /// count are ignored).
    #[inline(always)]
    fn expand(self, m: Self::M, src: &[f32], old: Self::F) -> Self::F {
        let mut a = [0.0; MAX_W];
        self.store(old, &mut a);
        let bits = self.bits(m);
        for (i, &v) in (0..Self::W).filter(|i| bits >> i & 1 == 1).zip(src) {
            a[i] = v;
        }
        self.load(&a)
    }
    /// [`Lanes::expand`] for u32 lanes.
    #[inline(always)]
    fn expand_u(self, m: Self::M, src: &[u32], old: Self::U) -> Self::U {
        let mut a = [0; MAX_W];
        self.store_u(old, &mut a);
        let bits = self.bits(m);
        for (i, &v) in (0..Self::W).filter(|i| bits >> i & 1 == 1).zip(src) {
            a[i] = v;
        }
        self.load_u(&a)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// What every lane of the integer primitives and lookups must give: the scalar numbers.
    struct MatchScalar;

    impl LaneJob for MatchScalar {
        type Output = ();
        #[inline(always)]
        fn run<L: Lanes>(self, l: L) {
            let mut state = 0x1234_5678u32;
            for _ in 0..256 {
                let (a, b): ([u32; MAX_W], [u32; MAX_W]) = (
                    std::array::from_fn(|i| state.wrapping_mul(0x9e37_79b9).rotate_left(i as u32 * 3)),
                    std::array::from_fn(|i| state.wrapping_add(i as u32).rotate_right(7) ^ 0x5bd1_e995),
                );
                state = state.wrapping_mul(0x2545_f491).wrapping_add(1);
                let (va, vb) = (l.load_u(&a), l.load_u(&b));
                let mut got = [[0u32; MAX_W]; 9];
                l.store_u(l.xor_u(va, vb), &mut got[0]);
                l.store_u(l.or_u(va, vb), &mut got[1]);
                l.store_u(l.shl_u::<13>(va), &mut got[2]);
                l.store_u(l.shr_u::<17>(va), &mut got[3]);
                l.store_u(l.mul_u(va, vb), &mut got[4]);
                l.store_u(l.select_u(l.lt(l.to_f(l.shr_u::<1>(va)), l.to_f(l.shr_u::<1>(vb))), va, vb), &mut got[5]);
                l.store_u(l.add_u(va, vb), &mut got[6]);
                l.store_u(l.sub_u(va, vb), &mut got[7]);
                l.store_u(l.to_u(l.to_f(l.shr_u::<9>(vb)) * l.splat(0.75)), &mut got[8]);
                let mut f = [0f32; MAX_W];
                l.store(l.to_f(l.shr_u::<1>(vb)), &mut f);
                for i in 0..L::W {
                    let want = [a[i] ^ b[i], a[i] | b[i], a[i] << 13, a[i] >> 17, a[i].wrapping_mul(b[i])];
                    for (op, w) in want.iter().enumerate() {
                        assert_eq!(got[op][i], *w, "op {op}, lane {i}");
                    }
                    let pick = if ((a[i] >> 1) as f32) < ((b[i] >> 1) as f32) { a[i] } else { b[i] };
                    assert_eq!(got[5][i], pick, "select_u, lane {i}");
                    assert_eq!(f[i], (b[i] >> 1) as f32, "to_f, lane {i}");
                    assert_eq!(got[6][i], a[i].wrapping_add(b[i]), "add_u, lane {i}");
                    assert_eq!(got[7][i], a[i].wrapping_sub(b[i]), "sub_u, lane {i}");
                    assert_eq!(got[8][i], ((b[i] >> 9) as f32 * 0.75) as u32, "to_u, lane {i}");
                }
            }
            // `lane(i)` picks lane i alone, `get` reads it, `lookup`/`lookup8` read the table.
            let (v, t): ([f32; MAX_W], [f32; 16]) =
                (std::array::from_fn(|i| i as f32 + 0.5), std::array::from_fn(|i| -(i as f32)));
            let idx: [u32; MAX_W] = std::array::from_fn(|i| (i as u32 * 5 + 3) % 16);
            let (mut looked, mut looked8, mut got) = ([0f32; MAX_W], [0f32; MAX_W], [0f32; MAX_W]);
            l.store(l.lookup(&t, l.load_u(&idx)), &mut looked);
            l.store(l.lookup8(&t, l.load_u(&idx.map(|i| i % 8))), &mut looked8);
            for i in 0..L::W {
                assert_eq!(looked[i], t[idx[i] as usize], "lookup, lane {i}");
                assert_eq!(looked8[i], t[idx[i] as usize % 8], "lookup8, lane {i}");
                assert_eq!(l.get(l.load(&v), i), v[i], "get, lane {i}");
                l.store(l.select(l.lane(i), l.splat(-1.0), l.load(&v)), &mut got);
                for j in 0..L::W {
                    assert_eq!(got[j], if j == i { -1.0 } else { v[j] }, "lane({i}), lane {j}");
                }
                assert_eq!(l.bits(l.eq(l.load(&v), l.splat(v[i]))), 1 << i, "eq, lane {i}");
            }
            // `mask_of` and the expands: every 8-lane mask, and a few of 16 and 32.
            let src: [f32; MAX_W] = std::array::from_fn(|i| 100.0 + i as f32);
            let src_u: [u32; MAX_W] = std::array::from_fn(|i| 200 + i as u32);
            for bits in (0u32..256)
                .chain([0x8421, 0xffff, 0x7ffe, 0x1234, 0x8001_7ffe, 0xffff_0000, u32::MAX])
                .map(|b| b & L::ALL)
            {
                let m = l.mask_of(bits);
                assert_eq!(l.bits(m), bits, "mask_of");
                let (mut f, mut u) = ([0f32; MAX_W], [0u32; MAX_W]);
                l.store(l.expand(m, &src[..L::W], l.load(&v)), &mut f);
                l.store_u(l.expand_u(m, &src_u[..L::W], l.load_u(&idx)), &mut u);
                let mut k = 0;
                for i in 0..L::W {
                    let (wf, wu) = if bits >> i & 1 == 1 { (src[k], src_u[k]) } else { (v[i], idx[i]) };
                    k += (bits >> i & 1) as usize;
                    assert_eq!((f[i], u[i]), (wf, wu), "expand {bits:#x}, lane {i}");
                }
            }
        }
    }

    #[test]
    fn every_path_computes_the_scalar_numbers() {
        for path in SimdPath::ALL {
            if path.usable() {
                dispatch(path, MatchScalar);
            } else {
                eprintln!("{}: skipped, this CPU lacks it", path.name());
            }
        }
    }

    /// `RENDER_SIMD` names a path (any case, spaces trimmed), is empty, or is an error that
    /// lists every path.
    #[test]
    fn a_simd_value_names_a_path_or_is_an_error() {
        assert_eq!(SimdPath::requested(" AVX2 "), Ok(Some(SimdPath::Avx2)));
        assert_eq!(SimdPath::requested(" "), Ok(None));
        let e = SimdPath::requested("avx-2").unwrap_err().to_string();
        assert!(SimdPath::ALL.iter().all(|p| e.contains(p.name())) && e.contains("`avx-2`"), "{e}");
    }

    /// [`paired::Paired`] on the paths every x86-64 has, so that it is checked on any machine
    /// (AVX2 and AVX-512 run paired, and are checked above where the CPU has them).
    #[test]
    fn paired_lanes_compute_the_scalar_numbers() {
        MatchScalar.run(paired::Paired(Scalar));
        MatchScalar.run(paired::Paired(sse2::Sse2::token()));
    }
}
