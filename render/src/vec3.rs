//! A plain f64 3-vector with exactly smallpt's operations.
//!
//! The classic engine must repeat smallpt's floating-point arithmetic operation for operation, so
//! every method here is the textbook one-liner in the textbook order (no fused multiply-add, no
//! reciprocal tricks beyond the one smallpt itself uses in `norm`).

use std::ops::{Add, Mul, Sub};

/// A 3-vector of f64: a point, a direction or an RGB colour.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec3 {
    /// First component (red for colours).
    pub x: f64,
    /// Second component (green).
    pub y: f64,
    /// Third component (blue).
    pub z: f64,
}

impl Vec3 {
    /// The zero vector.
    pub const ZERO: Vec3 = Vec3::new(0.0, 0.0, 0.0);

    /// A vector from its components.
    pub const fn new(x: f64, y: f64, z: f64) -> Vec3 {
        Vec3 { x, y, z }
    }

    /// Component-wise product (smallpt's `mult`).
    #[inline(always)]
    pub fn mult(self, b: Vec3) -> Vec3 {
        Vec3::new(self.x * b.x, self.y * b.y, self.z * b.z)
    }

    /// Dot product, summed left to right.
    #[inline(always)]
    pub fn dot(self, b: Vec3) -> f64 {
        self.x * b.x + self.y * b.y + self.z * b.z
    }

    /// Cross product (smallpt's `%`).
    #[inline(always)]
    pub fn cross(self, b: Vec3) -> Vec3 {
        Vec3::new(self.y * b.z - self.z * b.y, self.z * b.x - self.x * b.z, self.x * b.y - self.y * b.x)
    }

    /// Unit vector: multiplies by `1/sqrt(len²)` as smallpt does (not three divisions), which
    /// rounds differently from dividing and is what the oracles contain.
    #[inline(always)]
    pub fn norm(self) -> Vec3 {
        self * (1.0 / (self.x * self.x + self.y * self.y + self.z * self.z).sqrt())
    }

    /// The largest component.
    pub fn max_component(self) -> f64 {
        self.x.max(self.y).max(self.z)
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    #[inline(always)]
    fn add(self, b: Vec3) -> Vec3 {
        Vec3::new(self.x + b.x, self.y + b.y, self.z + b.z)
    }
}

impl Sub for Vec3 {
    type Output = Vec3;
    #[inline(always)]
    fn sub(self, b: Vec3) -> Vec3 {
        Vec3::new(self.x - b.x, self.y - b.y, self.z - b.z)
    }
}

impl Mul<f64> for Vec3 {
    type Output = Vec3;
    #[inline(always)]
    fn mul(self, b: f64) -> Vec3 {
        Vec3::new(self.x * b, self.y * b, self.z * b)
    }
}
