//! Camera rays in lanes: smallpt's camera, tent filter and 2×2 subpixels in f32, and each
//! sample's random stream keyed by its position.

use super::lanes::{Lanes, MAX_W};
use super::math::{dot, fma3, splat_v, store3, tent};
use super::rng::{hash32, seed, uniform};
use crate::camera::SUBPIXELS;
use crate::scene::CameraFrame;

/// The camera of one render in f32.
pub(super) struct Camera {
    o: [f32; 3],
    d: [f32; 3],
    cx: [f32; 3],
    cy: [f32; 3],
    near: f32,
    inv_width: f32,
    inv_height: f32,
    seed: u32,
    /// Each subpixel's corner in the pixel, x and y, as lookup tables.
    sub_x: [f32; 16],
    sub_y: [f32; 16],
}

/// Which samples a batch traces: of row `y` (smallpt's y, 0 at the bottom), pixels `x0 ..`, and
/// of each of their subpixels samples `first .. first + count`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Samples {
    pub y: u32,
    pub x0: u32,
    pub first: u32,
    pub count: u32,
}

/// Camera rays made ahead, `W` at a time in lanes, for samples `first ..` of a batch.
pub(super) struct CameraRays {
    pub first: u32,
    pub o: [[f32; MAX_W]; 3],
    pub d: [[f32; MAX_W]; 3],
    pub rng: [u32; MAX_W],
    /// The sample index (in the batch) of each ray.
    pub sample: [u32; MAX_W],
}

impl CameraRays {
    /// Holds no rays yet.
    pub fn new() -> CameraRays {
        let z = [[0.0; MAX_W]; 3];
        CameraRays { first: u32::MAX - MAX_W as u32, o: z, d: z, rng: [0; MAX_W], sample: [0; MAX_W] }
    }
}

impl Camera {
    /// `frame` for an image `width`×`height`, random streams keyed by `seed`.
    pub fn new(frame: &CameraFrame, width: u32, height: u32, seed: u32) -> Camera {
        let v = |v: crate::vec3::Vec3| [v.x as f32, v.y as f32, v.z as f32];
        Camera {
            o: v(frame.origin),
            d: v(frame.dir),
            cx: v(frame.cx),
            cy: v(frame.cy),
            near: frame.near as f32,
            inv_width: 1.0 / width as f32,
            inv_height: 1.0 / height as f32,
            seed,
            sub_x: std::array::from_fn(|i| SUBPIXELS.get(i).map_or(0.0, |s| s.0 as f32)),
            sub_y: std::array::from_fn(|i| SUBPIXELS.get(i).map_or(0.0, |s| s.1 as f32)),
        }
    }

    /// Camera rays (origin, direction) and random streams of samples `j0 .. j0 + W` of the batch
    /// `s`, one per lane. Sample j is pixel j / 4n, subpixel j / n mod 4, index `first` + j mod n
    /// (n samples per subpixel in the batch); its stream is keyed by (seed, y, x, index·4 +
    /// subpixel), so a sample is the same whichever batch or pass traces it.
    #[inline(always)]
    pub fn rays<L: Lanes>(&self, l: L, j0: u32, s: &Samples, cams: &mut CameraRays) {
        let (n, y) = (s.count, s.y);
        // Sample j is pixel q / 4, subpixel q mod 4, index first + j − q·n, for q = ⌊j / n⌋. In
        // f32, (j + ½)·(1/n) is within (j/n)·2⁻²³ of (j + ½)/n, which lies ½/n or more from an
        // integer: for j < 2²² (a batch holds far fewer samples) its integer part is q.
        debug_assert!(j0 + L::W as u32 <= 1 << 22);
        let j = l.add_u(l.splat_u(j0), l.iota_u());
        let q = l.to_u((l.to_f(j) + l.splat(0.5)) * l.splat(1.0 / n as f32));
        let p = l.shr_u::<2>(q);
        let sub = l.sub_u(q, l.shl_u::<2>(p));
        let k = l.sub_u(j, l.mul_u(q, l.splat_u(n)));
        let px = l.add_u(l.splat_u(s.x0), p);
        let key = l.or_u(l.shl_u::<2>(l.add_u(l.splat_u(s.first), k)), sub);
        let (sx, sy) = (l.lookup(&self.sub_x, sub), l.lookup(&self.sub_y, sub));
        l.store_u(j, &mut cams.sample);
        let row = l.splat_u(hash32(hash32(self.seed) ^ y));
        let mut rng = seed(l, seed(l, row, px), key);
        let dx = tent(l, l.splat(2.0) * uniform(l, &mut rng));
        let dy = tent(l, l.splat(2.0) * uniform(l, &mut rng));
        let half = l.splat(0.5);
        let fx = ((sx + half + dx) * half + l.to_f(px)) * l.splat(self.inv_width) - half;
        let fy = ((sy + half + dy) * half + l.splat(y as f32)) * l.splat(self.inv_height) - half;
        let d = splat_v(l, self.cx) * fx + splat_v(l, self.cy) * fy + splat_v(l, self.d);
        let d = d * (l.splat(1.0) / l.sqrt(dot(l, d, d)));
        store3(l, fma3(l, d, l.splat(self.near), splat_v(l, self.o)), &mut cams.o);
        store3(l, d, &mut cams.d);
        l.store_u(rng, &mut cams.rng);
        cams.first = j0;
    }
}
