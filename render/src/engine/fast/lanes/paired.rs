//! Two vectors of a path as one of twice the lanes: every operation is the path's own, done on
//! both halves. No new instructions, so no `unsafe` here.
//!
//! Why: a step of the trace loop is one long chain of dependent operations (intersect, pick the
//! nearest, shade, the next ray), and one vector of lanes leaves the core waiting on latencies
//! (square roots, divides, blends in sequence) most of the time. Two independent halves give
//! the out-of-order core a second chain to run in those waits. A lane computes exactly what it
//! would in one vector, and takes its samples in the same order: the same bytes.

use super::Lanes;
use std::ops::{Add, BitAnd, BitOr, Div, Mul, Neg, Not, Sub};

/// The lanes of path `L`, twice.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Paired<L>(pub L);

/// A vector of `Paired` lanes: the low half, then the high half.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Two<T>(T, T);

/// `Two<T>` operator over both halves.
macro_rules! both {
    ($tr:ident, $f:ident) => {
        impl<T: $tr<Output = T>> $tr for Two<T> {
            type Output = Two<T>;
            #[inline(always)]
            fn $f(self, b: Two<T>) -> Two<T> {
                Two(self.0.$f(b.0), self.1.$f(b.1))
            }
        }
    };
}
both!(Add, add);
both!(Sub, sub);
both!(Mul, mul);
both!(Div, div);
both!(BitAnd, bitand);
both!(BitOr, bitor);

impl<T: Neg<Output = T>> Neg for Two<T> {
    type Output = Two<T>;
    #[inline(always)]
    fn neg(self) -> Two<T> {
        Two(-self.0, -self.1)
    }
}

impl<T: Not<Output = T>> Not for Two<T> {
    type Output = Two<T>;
    #[inline(always)]
    fn not(self) -> Two<T> {
        Two(!self.0, !self.1)
    }
}

impl<L: Lanes> Lanes for Paired<L> {
    const W: usize = 2 * L::W;
    type F = Two<L::F>;
    type M = Two<L::M>;
    type U = Two<L::U>;
    #[inline(always)]
    fn splat(self, x: f32) -> Self::F {
        Two(self.0.splat(x), self.0.splat(x))
    }
    #[inline(always)]
    fn load(self, p: &[f32]) -> Self::F {
        Two(self.0.load(p), self.0.load(&p[L::W..]))
    }
    #[inline(always)]
    fn store(self, v: Self::F, p: &mut [f32]) {
        self.0.store(v.0, p);
        self.0.store(v.1, &mut p[L::W..]);
    }
    #[inline(always)]
    fn load_u(self, p: &[u32]) -> Self::U {
        Two(self.0.load_u(p), self.0.load_u(&p[L::W..]))
    }
    #[inline(always)]
    fn store_u(self, v: Self::U, p: &mut [u32]) {
        self.0.store_u(v.0, p);
        self.0.store_u(v.1, &mut p[L::W..]);
    }
    #[inline(always)]
    fn splat_u(self, x: u32) -> Self::U {
        Two(self.0.splat_u(x), self.0.splat_u(x))
    }
    #[inline(always)]
    fn fma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F {
        Two(self.0.fma(a.0, b.0, c.0), self.0.fma(a.1, b.1, c.1))
    }
    #[inline(always)]
    fn sqrt(self, a: Self::F) -> Self::F {
        Two(self.0.sqrt(a.0), self.0.sqrt(a.1))
    }
    #[inline(always)]
    fn min(self, a: Self::F, b: Self::F) -> Self::F {
        Two(self.0.min(a.0, b.0), self.0.min(a.1, b.1))
    }
    #[inline(always)]
    fn max(self, a: Self::F, b: Self::F) -> Self::F {
        Two(self.0.max(a.0, b.0), self.0.max(a.1, b.1))
    }
    #[inline(always)]
    fn lt(self, a: Self::F, b: Self::F) -> Self::M {
        Two(self.0.lt(a.0, b.0), self.0.lt(a.1, b.1))
    }
    #[inline(always)]
    fn eq(self, a: Self::F, b: Self::F) -> Self::M {
        Two(self.0.eq(a.0, b.0), self.0.eq(a.1, b.1))
    }
    #[inline(always)]
    fn select(self, m: Self::M, a: Self::F, b: Self::F) -> Self::F {
        Two(self.0.select(m.0, a.0, b.0), self.0.select(m.1, a.1, b.1))
    }
    #[inline(always)]
    fn select_u(self, m: Self::M, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.select_u(m.0, a.0, b.0), self.0.select_u(m.1, a.1, b.1))
    }
    #[inline(always)]
    fn copysign(self, a: Self::F, s: Self::F) -> Self::F {
        Two(self.0.copysign(a.0, s.0), self.0.copysign(a.1, s.1))
    }
    #[inline(always)]
    fn with_sign_of(self, a: Self::F, s: Self::F) -> Self::F {
        Two(self.0.with_sign_of(a.0, s.0), self.0.with_sign_of(a.1, s.1))
    }
    #[inline(always)]
    fn abs(self, a: Self::F) -> Self::F {
        Two(self.0.abs(a.0), self.0.abs(a.1))
    }
    #[inline(always)]
    fn lane(self, i: usize) -> Self::M {
        self.mask_of(1 << i)
    }
    #[inline(always)]
    fn bits(self, m: Self::M) -> u32 {
        self.0.bits(m.0) | self.0.bits(m.1) << L::W
    }
    #[inline(always)]
    fn lookup(self, t: &[f32; 16], i: Self::U) -> Self::F {
        Two(self.0.lookup(t, i.0), self.0.lookup(t, i.1))
    }
    #[inline(always)]
    fn lookup8(self, t: &[f32; 16], i: Self::U) -> Self::F {
        Two(self.0.lookup8(t, i.0), self.0.lookup8(t, i.1))
    }
    #[inline(always)]
    fn xor_u(self, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.xor_u(a.0, b.0), self.0.xor_u(a.1, b.1))
    }
    #[inline(always)]
    fn or_u(self, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.or_u(a.0, b.0), self.0.or_u(a.1, b.1))
    }
    #[inline(always)]
    fn shl_u<const N: i32>(self, a: Self::U) -> Self::U {
        Two(self.0.shl_u::<N>(a.0), self.0.shl_u::<N>(a.1))
    }
    #[inline(always)]
    fn shr_u<const N: i32>(self, a: Self::U) -> Self::U {
        Two(self.0.shr_u::<N>(a.0), self.0.shr_u::<N>(a.1))
    }
    #[inline(always)]
    fn mul_u(self, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.mul_u(a.0, b.0), self.0.mul_u(a.1, b.1))
    }
    #[inline(always)]
    fn to_f(self, v: Self::U) -> Self::F {
        Two(self.0.to_f(v.0), self.0.to_f(v.1))
    }
    #[inline(always)]
    fn add_u(self, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.add_u(a.0, b.0), self.0.add_u(a.1, b.1))
    }
    #[inline(always)]
    fn sub_u(self, a: Self::U, b: Self::U) -> Self::U {
        Two(self.0.sub_u(a.0, b.0), self.0.sub_u(a.1, b.1))
    }
    #[inline(always)]
    fn to_u(self, v: Self::F) -> Self::U {
        Two(self.0.to_u(v.0), self.0.to_u(v.1))
    }
    #[inline(always)]
    fn iota_u(self) -> Self::U {
        let low = self.0.iota_u();
        Two(low, self.0.add_u(low, self.0.splat_u(L::W as u32)))
    }
    const EXPAND: bool = L::EXPAND;
    #[inline(always)]
    fn mask_of(self, bits: u32) -> Self::M {
        Two(self.0.mask_of(bits & L::ALL), self.0.mask_of(bits >> L::W))
    }
    #[inline(always)]
    fn expand(self, m: Self::M, src: &[f32], old: Self::F) -> Self::F {
        // The high half takes the elements after the low half's.
        let taken = self.0.bits(m.0).count_ones() as usize;
        Two(self.0.expand(m.0, src, old.0), self.0.expand(m.1, &src[taken..], old.1))
    }
    #[inline(always)]
    fn expand_u(self, m: Self::M, src: &[u32], old: Self::U) -> Self::U {
        let taken = self.0.bits(m.0).count_ones() as usize;
        Two(self.0.expand_u(m.0, src, old.0), self.0.expand_u(m.1, &src[taken..], old.1))
    }
}
