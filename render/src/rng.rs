//! Random number generators.
//!
//! [`Erand48`] is glibc's `erand48`, bit for bit: the classic engine needs its exact sequence.

/// glibc's `erand48`: a 48-bit linear congruential generator `x' = a·x + c mod 2⁴⁸`, returning
/// `x'/2⁴⁸` (glibc builds the double by placing the 48 bits in the mantissa of a number in [1, 2)
/// and subtracting 1, which is exactly this division).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erand48 {
    state: u64,
}

impl Erand48 {
    const A: u64 = 0x5_DEEC_E66D;
    const C: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    /// A generator from the three 16-bit words of C's `unsigned short xsubi[3]`, low word first.
    pub fn from_words(xsubi: [u16; 3]) -> Erand48 {
        let state = u64::from(xsubi[0]) | u64::from(xsubi[1]) << 16 | u64::from(xsubi[2]) << 32;
        Erand48 { state }
    }

    /// smallpt's per-row state `{seed, 0, (unsigned short)(y*y*y)}`, with `y` counted from the
    /// bottom row and `y*y*y` wrapping like C's 32-bit `int` before the truncation to 16 bits.
    pub fn for_row(seed: u16, y: u32) -> Erand48 {
        let y = y as i32;
        let cube = y.wrapping_mul(y).wrapping_mul(y);
        Erand48::from_words([seed, 0, cube as u16])
    }

    /// The next number in [0, 1).
    #[inline(always)]
    pub fn next_f64(&mut self) -> f64 {
        self.state = (Self::A.wrapping_mul(self.state).wrapping_add(Self::C)) & Self::MASK;
        self.state as f64 * (1.0 / (1u64 << 48) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the digits glibc printed, kept verbatim
    fn matches_glibc_erand48() {
        // Printed with "%.17g" by a C program calling glibc 2.36's erand48 on xsubi = {1, 2, 3},
        // then on {0, 0, 0}.
        let mut r = Erand48::from_words([1, 2, 3]);
        for want in [0.44199632268870914, 0.26312812416393783, 0.65413825286481853, 0.42064911573477914] {
            assert_eq!(r.next_f64(), want);
        }
        assert_eq!(Erand48::from_words([0, 0, 0]).next_f64(), 3.907985046680551e-14);
    }

    #[test]
    fn row_state_wraps_like_c_int() {
        // 1290^3 = 2_146_689_000 fits in i32; 1291^3 = 2_151_685_171 wraps negative.
        let r = Erand48::for_row(0, 1291);
        let wrapped = (1291i64 * 1291 * 1291) as i32 as u16;
        assert_eq!(r, Erand48::from_words([0, 0, wrapped]));
        assert_eq!(Erand48::for_row(7, 2), Erand48::from_words([7, 0, 8]));
    }
}
