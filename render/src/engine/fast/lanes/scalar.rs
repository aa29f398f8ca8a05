//! One lane, plain Rust: the reference every wider path is tested against.

use super::Lanes;

/// One lane, plain Rust.
#[derive(Clone, Copy)]
pub(in crate::engine::fast) struct Scalar;

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
    fn eq(self, a: f32, b: f32) -> bool {
        a == b
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
    fn xor_u(self, a: u32, b: u32) -> u32 {
        a ^ b
    }
    #[inline(always)]
    fn or_u(self, a: u32, b: u32) -> u32 {
        a | b
    }
    #[inline(always)]
    fn shl_u<const N: i32>(self, a: u32) -> u32 {
        a << N
    }
    #[inline(always)]
    fn shr_u<const N: i32>(self, a: u32) -> u32 {
        a >> N
    }
    #[inline(always)]
    fn mul_u(self, a: u32, b: u32) -> u32 {
        a.wrapping_mul(b)
    }
    #[inline(always)]
    fn to_f(self, v: u32) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn add_u(self, a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
    #[inline(always)]
    fn sub_u(self, a: u32, b: u32) -> u32 {
        a.wrapping_sub(b)
    }
    #[inline(always)]
    fn to_u(self, v: f32) -> u32 {
        v as u32
    }
}
