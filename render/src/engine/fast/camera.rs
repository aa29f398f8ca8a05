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
        }
    }

    /// Camera rays (origin, direction) and random streams of samples `j0 .. j0 + W` of the batch
    /// `s`, one per lane. Sample j is pixel j / 4n, subpixel j / n mod 4, index `first` + j mod n
    /// (n samples per subpixel in the batch); its stream is keyed by (seed, y, x, index·4 +
    /// subpixel), so a sample is the same whichever batch or pass traces it.
    #[inline(always)]
    pub fn rays<L: Lanes>(&self, l: L, j0: u32, s: &Samples, cams: &mut CameraRays) {
        let (n, y, x0) = (s.count, s.y, s.x0);
        let (mut p, mut sub, mut k) = (j0 / (4 * n), j0 / n % 4, j0 % n);
        let (mut px, mut key, mut sx, mut sy) = ([0u32; MAX_W], [0u32; MAX_W], [0f32; MAX_W], [0f32; MAX_W]);
        for i in 0..L::W {
            cams.sample[i] = j0 + i as u32;
            (px[i], key[i]) = (x0 + p, (s.first + k) << 2 | sub);
            (sx[i], sy[i]) = (SUBPIXELS[sub as usize].0 as f32, SUBPIXELS[sub as usize].1 as f32);
            k += 1;
            if k == n {
                (k, sub) = (0, sub + 1);
                if sub == 4 {
                    (sub, p) = (0, p + 1);
                }
            }
        }
        let row = l.splat_u(hash32(hash32(self.seed) ^ y));
        let mut rng = seed(l, seed(l, row, l.load_u(&px)), l.load_u(&key));
        let dx = tent(l, l.splat(2.0) * uniform(l, &mut rng));
        let dy = tent(l, l.splat(2.0) * uniform(l, &mut rng));
        let half = l.splat(0.5);
        let fx = ((l.load(&sx) + half + dx) * half + l.to_f(l.load_u(&px))) * l.splat(self.inv_width) - half;
        let fy = ((l.load(&sy) + half + dy) * half + l.splat(y as f32)) * l.splat(self.inv_height) - half;
        let d = splat_v(l, self.cx) * fx + splat_v(l, self.cy) * fy + splat_v(l, self.d);
        let d = d * (l.splat(1.0) / l.sqrt(dot(l, d, d)));
        store3(l, fma3(l, d, l.splat(self.near), splat_v(l, self.o)), &mut cams.o);
        store3(l, d, &mut cams.d);
        l.store_u(rng, &mut cams.rng);
        cams.first = j0;
    }
}
