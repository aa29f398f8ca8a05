//! Vector math over lanes: 3-vectors whose components are lane vectors, and the few functions
//! of them the path tracer needs (dot products, blends, a sine/cosine, a basis, the tent filter).

use super::lanes::{Lanes, MAX_W};
use std::ops::{Add, Mul, Neg, Sub};

/// A 3-vector of lanes (or of plain f32 for the scalar camera code).
#[derive(Clone, Copy)]
pub(super) struct V3<F> {
    pub x: F,
    pub y: F,
    pub z: F,
}

impl<F: Copy + Add<Output = F>> Add for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn add(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x + b.x, y: self.y + b.y, z: self.z + b.z }
    }
}
impl<F: Copy + Sub<Output = F>> Sub for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn sub(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x - b.x, y: self.y - b.y, z: self.z - b.z }
    }
}
impl<F: Copy + Mul<Output = F>> Mul<F> for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn mul(self, s: F) -> V3<F> {
        V3 { x: self.x * s, y: self.y * s, z: self.z * s }
    }
}
impl<F: Copy + Neg<Output = F>> Neg for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn neg(self) -> V3<F> {
        V3 { x: -self.x, y: -self.y, z: -self.z }
    }
}
impl<F: Copy + Add<Output = F> + Mul<Output = F>> V3<F> {
    /// Component `axis` (0 x, 1 y, 2 z).
    #[inline(always)]
    pub(super) fn pick(self, axis: u8) -> F {
        match axis {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }
    #[inline(always)]
    pub(super) fn mul_each(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x * b.x, y: self.y * b.y, z: self.z * b.z }
    }
}

/// The indices of the set bits of `bits`, lowest first (lanes of a [`Lanes::bits`] mask).
#[inline(always)]
pub(super) fn set_bits(mut bits: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = bits.trailing_zeros() as usize;
        bits &= bits.wrapping_sub(1);
        (i < 32).then_some(i)
    })
}

/// a·s + b per component, fused.
#[inline(always)]
pub(super) fn fma3<L: Lanes>(l: L, a: V3<L::F>, s: L::F, b: V3<L::F>) -> V3<L::F> {
    V3 { x: l.fma(a.x, s, b.x), y: l.fma(a.y, s, b.y), z: l.fma(a.z, s, b.z) }
}

/// a·b with fused multiply-adds.
#[inline(always)]
pub(super) fn dot<L: Lanes>(l: L, a: V3<L::F>, b: V3<L::F>) -> L::F {
    l.fma(a.x, b.x, l.fma(a.y, b.y, a.z * b.z))
}

#[inline(always)]
pub(super) fn load3<L: Lanes>(l: L, a: &[[f32; MAX_W]; 3]) -> V3<L::F> {
    V3 { x: l.load(&a[0]), y: l.load(&a[1]), z: l.load(&a[2]) }
}

#[inline(always)]
pub(super) fn store3<L: Lanes>(l: L, v: V3<L::F>, a: &mut [[f32; MAX_W]; 3]) {
    l.store(v.x, &mut a[0]);
    l.store(v.y, &mut a[1]);
    l.store(v.z, &mut a[2]);
}

/// `v` in every lane.
#[inline(always)]
pub(super) fn splat_v<L: Lanes>(l: L, v: [f32; 3]) -> V3<L::F> {
    V3 { x: l.splat(v[0]), y: l.splat(v[1]), z: l.splat(v[2]) }
}

/// m ? a : b per component.
#[inline(always)]
pub(super) fn sel3<L: Lanes>(l: L, m: L::M, a: V3<L::F>, b: V3<L::F>) -> V3<L::F> {
    V3 { x: l.select(m, a.x, b.x), y: l.select(m, a.y, b.y), z: l.select(m, a.z, b.z) }
}

/// (cos 2πu, sin 2πu) for u in [0, 1). With h = π(u − ½) in [−π/2, π/2): s = sin h by its
/// Taylor series (error < 1e-7), cos 2πu = 2s² − 1 and sin 2πu = −2s·√(1 − s²). (A second
/// polynomial for cos h in place of the square root measured no faster.)
#[inline(always)]
pub(super) fn cos_sin_2pi<L: Lanes>(l: L, u: L::F) -> (L::F, L::F) {
    let h = (u - l.splat(0.5)) * l.splat(std::f32::consts::PI);
    let h2 = h * h;
    let mut p = l.splat(-1.0 / 39_916_800.0);
    for c in [1.0 / 362_880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0, 1.0] {
        p = l.fma(p, h2, l.splat(c));
    }
    let sin_h = p * h;
    let cos_h = l.sqrt(l.max(l.splat(1.0) - sin_h * sin_h, l.splat(0.0)));
    (l.fma(l.splat(2.0) * sin_h, sin_h, l.splat(-1.0)), -(l.splat(2.0) * sin_h * cos_h))
}

/// Two unit vectors completing unit `n` to an orthonormal basis (Duff et al. 2017, branch-free).
/// Any basis gives the same cosine distribution; this one needs no normalisation.
#[inline(always)]
pub(super) fn orthonormal_basis<L: Lanes>(l: L, n: V3<L::F>) -> (V3<L::F>, V3<L::F>) {
    let one = l.splat(1.0);
    let sign = l.copysign(one, n.z);
    let a = -(one / (sign + n.z));
    let b = n.x * n.y * a;
    let u = V3 { x: l.fma(sign * n.x * n.x, a, one), y: sign * b, z: -(sign * n.x) };
    let v = V3 { x: b, y: l.fma(n.y * n.y, a, sign), z: -n.y };
    (u, v)
}

/// smallpt's tent filter in f32: `r` in [0, 2) to an offset in [-1, 1), without a branch:
/// with u = r − 1, sign(u)·(1 − √(1 − |u|)) is √r − 1 below 1 and 1 − √(2 − r) above.
#[inline(always)]
pub(super) fn tent<L: Lanes>(l: L, r: L::F) -> L::F {
    let one = l.splat(1.0);
    let u = r - one;
    l.copysign(one - l.sqrt(one - l.copysign(u, one)), u)
}
