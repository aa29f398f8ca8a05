//! The classic engine: smallpt.cpp, operation for operation, in f64.
//!
//! Everything that decides a bit of the output is smallpt's: the order of the arithmetic, the
//! `erand48` stream per row and the order in which it is consumed, the intersection loop running
//! from the last sphere to the first with a strict `<`, and the camera ray starting at
//! `origin + normalize(d)*140` (g++ evaluates `d.norm()` first; see the reference README).
//! What is ours: the scene comes from [`Scene`], rows may run in any order on any thread (each row
//! reseeds its generator, so this changes nothing), and we count ray segments.

use super::{Cancelled, Engine, RowStats};
use crate::camera::{SUBPIXELS, tent};
use crate::color::{Rgb, clamp};
use crate::control::CancelToken;
use crate::request::RenderRequest;
use crate::rng::Erand48;
use crate::scene::{CameraFrame, GLASS_IOR, Material, Scene, Sphere};
use crate::vec3::Vec3;
use std::f64::consts::PI;

/// Intersections closer than this are ignored, so a bounced ray does not hit its own surface.
const EPS: f64 = 1e-4;
/// "No hit" distance.
const INF: f64 = 1e20;
/// Paths deeper than this continue only by Russian roulette on the surface's largest albedo.
const ROULETTE_DEPTH: u32 = 5;
/// At this depth or less, glass traces both the reflected and the refracted ray; deeper, it picks one.
const SPLIT_DEPTH: u32 = 2;

/// smallpt in f64.
pub struct Classic {
    spheres: Vec<Sphere>,
    cam: CameraFrame,
    width: u32,
    height: u32,
    samples: u32,
    seed: u16,
}

impl Classic {
    /// The engine for one request on one scene.
    pub fn new(scene: &Scene, req: &RenderRequest) -> Classic {
        Classic {
            spheres: scene.spheres.clone(),
            cam: scene.camera.frame(req.width, req.height),
            width: req.width,
            height: req.height,
            samples: req.samples_per_subpixel(),
            seed: req.seed as u16,
        }
    }

    /// Nearest hit along the ray: (distance, sphere index).
    #[inline(always)]
    fn intersect(&self, o: Vec3, d: Vec3) -> Option<(f64, usize)> {
        let mut t = INF;
        let mut id = 0;
        for (i, s) in self.spheres.iter().enumerate().rev() {
            let op = s.center - o;
            let b = op.dot(d);
            let det = b * b - op.dot(op) + s.radius * s.radius;
            if det < 0.0 {
                continue;
            }
            let det = det.sqrt();
            let hit = if b - det > EPS {
                b - det
            } else if b + det > EPS {
                b + det
            } else {
                continue;
            };
            if hit < t {
                t = hit;
                id = i;
            }
        }
        (t < INF).then_some((t, id))
    }

    /// smallpt's `radiance`: the light arriving along the ray, recursively.
    fn radiance(&self, o: Vec3, d: Vec3, depth: u32, xi: &mut Erand48, segments: &mut u64) -> Vec3 {
        *segments += 1;
        let Some((t, id)) = self.intersect(o, d) else { return Vec3::ZERO };
        let obj = &self.spheres[id];
        let x = o + d * t;
        let n = (x - obj.center).norm();
        let nl = if n.dot(d) < 0.0 { n } else { n * -1.0 };
        let mut f = obj.color;
        let depth = depth + 1;
        if depth > ROULETTE_DEPTH {
            let p = f.max_component();
            if xi.next_f64() < p {
                f = f * (1.0 / p);
            } else {
                return obj.emission;
            }
        }
        let reflected = d - n * 2.0 * n.dot(d);
        match obj.material {
            Material::Diffuse => {
                // Cosine-weighted direction around nl, in the frame (u, v, w).
                let r1 = 2.0 * PI * xi.next_f64();
                let r2 = xi.next_f64();
                let r2s = r2.sqrt();
                let w = nl;
                let a = if w.x.abs() > 0.1 { Vec3::new(0.0, 1.0, 0.0) } else { Vec3::new(1.0, 0.0, 0.0) };
                let u = a.cross(w).norm();
                let v = w.cross(u);
                let dir = (u * r1.cos() * r2s + v * r1.sin() * r2s + w * (1.0 - r2).sqrt()).norm();
                obj.emission + f.mult(self.radiance(x, dir, depth, xi, segments))
            }
            Material::Mirror => obj.emission + f.mult(self.radiance(x, reflected, depth, xi, segments)),
            Material::Glass => {
                // Entering when the geometric normal faces the ray (n·nl > 0, not n·n).
                let into = n.dot(nl) > 0.0;
                let (nc, nt) = (1.0, GLASS_IOR);
                let nnt = if into { nc / nt } else { nt / nc };
                let ddn = d.dot(nl);
                let cos2t = 1.0 - nnt * nnt * (1.0 - ddn * ddn);
                if cos2t < 0.0 {
                    // Total internal reflection.
                    return obj.emission + f.mult(self.radiance(x, reflected, depth, xi, segments));
                }
                let sign = if into { 1.0 } else { -1.0 };
                let tdir = (d * nnt - n * (sign * (ddn * nnt + cos2t.sqrt()))).norm();
                // Schlick's Fresnel approximation.
                let (a, b) = (nt - nc, nt + nc);
                let r0 = a * a / (b * b);
                let c = 1.0 - if into { -ddn } else { tdir.dot(n) };
                let re = r0 + (1.0 - r0) * c * c * c * c * c;
                let tr = 1.0 - re;
                let p = 0.25 + 0.5 * re;
                let (rp, tp) = (re / p, tr / (1.0 - p));
                let incoming = if depth > SPLIT_DEPTH {
                    if xi.next_f64() < p {
                        self.radiance(x, reflected, depth, xi, segments) * rp
                    } else {
                        self.radiance(x, tdir, depth, xi, segments) * tp
                    }
                } else {
                    // g++ evaluates the right operand of this `+` first: the refracted path draws its random
                    // numbers before the reflected one. The oracles are byte-identical only in this order.
                    let refr = self.radiance(x, tdir, depth, xi, segments) * tr;
                    self.radiance(x, reflected, depth, xi, segments) * re + refr
                };
                obj.emission + f.mult(incoming)
            }
        }
    }
}

impl Engine for Classic {
    fn render_row(&self, row: u32, out: &mut [Rgb], cancel: &CancelToken) -> Result<RowStats, Cancelled> {
        let (w, h) = (self.width, self.height);
        // smallpt counts y from the bottom of the image.
        let y = h - 1 - row;
        let mut xi = Erand48::for_row(self.seed, y);
        let mut segments = 0;
        let inv_samples = 1.0 / f64::from(self.samples);
        let cam = &self.cam;
        for (x, pixel) in out.iter_mut().enumerate() {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            let mut c = Vec3::ZERO;
            for (sx, sy) in SUBPIXELS {
                let mut r = Vec3::ZERO;
                for _ in 0..self.samples {
                    let dx = tent(2.0 * xi.next_f64());
                    let dy = tent(2.0 * xi.next_f64());
                    let d = cam.cx * (((sx + 0.5 + dx) / 2.0 + x as f64) / f64::from(w) - 0.5)
                        + cam.cy * (((sy + 0.5 + dy) / 2.0 + f64::from(y)) / f64::from(h) - 0.5)
                        + cam.dir;
                    let d = d.norm();
                    r = r + self.radiance(cam.origin + d * cam.near, d, 0, &mut xi, &mut segments) * inv_samples;
                }
                // smallpt clamps each subpixel's average before summing: a biased but firefly-free estimate.
                c = c + Vec3::new(clamp(r.x), clamp(r.y), clamp(r.z)) * 0.25;
            }
            *pixel = c;
        }
        Ok(RowStats { segments })
    }
}
