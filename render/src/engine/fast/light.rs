//! Next-event estimation: at each diffuse hit, a shadow ray to a point sampled on the light.
//!
//! **Which light.** The light is found from the scene, not assumed: an emitting sphere that
//! reaches into smallpt's closed box through one wall, so that what the room sees of it is a
//! spherical cap beyond that wall whose rim, a circle where the two spheres meet, lies inside the
//! room ([`Rim`]). smallpt's light is such a cap: the 600-radius sphere pokes 0.27 through the
//! ceiling, a rim about 36 across. Any other light (several walls crossed, a sphere wholly inside
//! the room, a scene that is not a closed box) is found only by chance, as by plain path
//! tracing; with none sampleable the engine is plain path tracing, and says why ([`NoLight`]).
//!
//! **How it is sampled: by area of the rim's disk.** From a point x on the room's side of the
//! rim's plane, a ray toward a point p of the disk enters the cap's solid segment before p (it
//! cannot enter through the disk, which it only reaches at p), so it meets the cap first: the
//! directions through the disk are a subset D of those that see the cap, and for D the cap is
//! seen exactly where the disk is. Sampling p uniformly on the disk gives direction density
//! d²/(A cos θ_p), and the estimate of the light reflected at x is
//! `f/π · Le · cos θ_x · cos θ_p · A / d²` when the shadow ray meets the light first. Directions
//! that see the cap but miss the disk (grazing rays from within a few units of the ceiling, which
//! meet the cap's rim from the side) are not in D: a path that reaches the light that way after
//! a diffuse bounce keeps its emission, and one that reaches it through D does not (NEE counted
//! it). Every direction is counted exactly once: unbiased. (The room is convex and the disk in
//! it, so the shadow rays skip the walls.)
//!
//! **Why area and not solid angle.** `scripts/nee-variance` measures one shadow ray's relative
//! standard deviation at points of the room. Exact solid-angle sampling of the disk would leave
//! only the variation of cos θ_x: 0.007–0.09. Area sampling adds that of d²/cos θ_p: 0.03 under
//! the light, about 0.23 on the floor's far corners and the walls, 0.6 on the walls just under
//! the ceiling, where the disk is seen edge-on from close by. smallpt's `explicit.cpp` samples
//! the cone of the whole sphere: 4.7–17, since from inside the room that cone is mostly ceiling.
//! Area sampling is several times noisier per ray than solid angle, but that noise is a small
//! share of a nee render's: with every light path found by chance left out, a render's variance
//! falls to an eighth (128×96, spp 256), so the shadow rays and the indirect light together are
//! at most that eighth. Exact solid-angle sampling of a disk seen obliquely (a spherical
//! ellipse) costs a few times the arithmetic of area sampling per ray, on every ray; it cannot
//! pay here.
//!
//! **Roulette.** The direct term at a hit is taken with weight f whether or not the path then
//! survives Russian roulette; only the continuation is weighted f/p. Both are unbiased; this one
//! has less variance for the same shadow rays.

use super::intersect::{EPS, INF, Spheres, nearest_beyond_walls};
use super::lanes::Lanes;
use super::math::{V3, cos_sin_2pi, dot, fma3, splat_v};
use super::shade::Bounce;
use super::tables::Tables;
use crate::scene::Scene;
use crate::vec3::Vec3;

/// Why a scene's light cannot be sampled, so that `nee` renders it by plain path tracing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoLight {
    /// No sphere emits.
    #[error("no sphere in the scene emits light")]
    NoEmitter,
    /// The scene is not a closed box of walls.
    #[error("the scene is not a closed box of walls, so the visible part of a light is not known")]
    NotABox,
    /// Emitters, but none is a cap through one wall.
    #[error("no emitting sphere reaches into the room as a cap through one wall")]
    NoCap,
}

/// The light the shadow rays aim at: an emitting sphere's cap below a wall of the box, sampled
/// by area of its rim disk.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Light {
    /// The sphere's index in the scene.
    pub sphere: usize,
    /// Its slot in the hit tables (what `nearest` returns for it).
    pub slot: u32,
    /// The rim's plane: its unit normal (from the emitter's centre into the room) and the disk's
    /// centre.
    pub normal: [f32; 3],
    pub center: [f32; 3],
    /// The disk's radius, and its area over π.
    pub radius: f32,
    pub area_over_pi: f32,
    /// Two unit vectors spanning the plane.
    pub e1: [f32; 3],
    pub e2: [f32; 3],
    /// Emitted radiance.
    pub emission: [f32; 3],
    /// What can shadow the light, when that is all the shadow rays need to test: the spheres
    /// that are neither walls nor the light, when none of them meets the light's sphere (then
    /// whatever a shadow ray meets before its disk point it meets before the cap).
    pub occluders: Option<Occluders>,
}

/// Most spheres [`Occluders`] holds.
const MAX_OCCLUDERS: usize = 8;

/// Spheres a shadow ray may not pass through: centre and squared radius.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Occluders {
    center: [[f32; 3]; MAX_OCCLUDERS],
    r2: [f32; MAX_OCCLUDERS],
    n: usize,
}

/// Where an emitting sphere meets a wall of the box, when what the room holds of it is a cap
/// bounded by that wall alone.
struct Rim {
    /// Unit normal of the circle's plane, from the emitter's centre toward the wall's.
    normal: Vec3,
    center: Vec3,
    radius: f64,
}

impl Rim {
    /// The rim of emitter `i` on wall `w`. smallpt's walls are spheres, not planes: the ceiling
    /// (radius 1e5) curves 0.0016 below its top 18 units out, so the light's rim is the circle
    /// where the two spheres meet, in their radical plane, about 0.1 inside the circle where the
    /// light crosses the plane y = 81.6 (sampling that one would count light the ceiling hides).
    /// The points of the emitter inside the wall's sphere are those beyond the radical plane;
    /// they form a cap (smaller than a hemisphere: the plane lies between the centres) that the
    /// room holds entirely when the cylinder over the rim down to the cap's depth is inside every
    /// other wall. Then the room sees of the emitter this cap and nothing else.
    fn of(scene: &Scene, i: usize, w: usize, walls: &[usize]) -> Option<Rim> {
        let (s, wall) = (&scene.spheres[i], &scene.spheres[w]);
        let to_wall = wall.center - s.center;
        let dist = to_wall.dot(to_wall).sqrt();
        let (r, big) = (s.radius, wall.radius);
        if !(dist > big && dist < big + r) {
            return None;
        }
        // Distance from the emitter's centre to the radical plane: (D² + r² − R²) / 2D, with
        // D² − R² formed as (D − R)(D + R) so the 1e5 radii do not cancel.
        let a = ((dist - big) * (dist + big) + r * r) / (2.0 * dist);
        if !(0.0 < a && a < r) {
            return None;
        }
        let normal = to_wall * (1.0 / dist);
        let rim = Rim { normal, center: s.center + normal * a, radius: (r * r - a * a).sqrt() };
        // The farthest point of a circle (centre m, this rim's plane and radius) from c.
        let farthest = |m: Vec3, c: Vec3| {
            let q = m - c;
            let across = q - normal * q.dot(normal);
            (q.dot(q) + rim.radius * rim.radius + 2.0 * rim.radius * across.dot(across).sqrt()).sqrt()
        };
        let bottom = rim.center - normal * (r - a);
        let held = walls.iter().filter(|&&o| o != w).all(|&o| {
            let other = &scene.spheres[o];
            farthest(rim.center, other.center) < other.radius && farthest(bottom, other.center) < other.radius
        });
        held.then_some(rim)
    }

    /// How much light the cap sends into the room, for choosing among caps.
    fn power(&self, scene: &Scene, i: usize) -> f64 {
        let e = scene.spheres[i].emission;
        (e.x + e.y + e.z) * self.radius * self.radius
    }
}

impl Occluders {
    /// The spheres of `scene` that are neither `light` nor in `walls`, if there are at most
    /// [`MAX_OCCLUDERS`] and none meets the light's sphere.
    pub fn find(scene: &Scene, light: usize, walls: &[usize]) -> Option<Occluders> {
        let l = &scene.spheres[light];
        let mut o = Occluders { center: [[0.0; 3]; MAX_OCCLUDERS], r2: [0.0; MAX_OCCLUDERS], n: 0 };
        for (i, s) in scene.spheres.iter().enumerate() {
            if i == light || walls.contains(&i) {
                continue;
            }
            let q = s.center - l.center;
            if o.n == MAX_OCCLUDERS || q.dot(q).sqrt() <= s.radius + l.radius {
                return None;
            }
            o.center[o.n] = [s.center.x as f32, s.center.y as f32, s.center.z as f32];
            o.r2[o.n] = (s.radius * s.radius) as f32;
            o.n += 1;
        }
        Some(o)
    }

    /// How many spheres it holds.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.n
    }

    /// Lanes whose segment `x + s·w`, 0 < s < 1 (`a` = |w|²), passes through a sphere. With
    /// oc = c − x, b = oc·w, C = |oc|² − r², the chord is s = (b ± √D)/a, D = b² − a·C; decided
    /// without a square root: from outside both roots lie ahead when b > 0, the near one before
    /// the end when b < a or (b − a)² < D. A start inside by more than EPS is blocked; one on a
    /// sphere's surface (C ≈ 0 either way by rounding) only when it heads into it (b > 0).
    #[inline(always)]
    pub fn block_segment<L: Lanes>(&self, l: L, x: V3<L::F>, w: V3<L::F>, a: L::F) -> L::M {
        let zero = l.splat(0.0);
        let mut blocked = l.lt(zero, zero);
        for (c, &r2) in self.center.iter().zip(&self.r2).take(self.n) {
            let oc = splat_v(l, *c) - x;
            let b = dot(l, oc, w);
            let cc = dot(l, oc, oc) - l.splat(r2);
            let disc = l.fma(b, b, -(a * cc));
            let past = b - a;
            let ahead = l.lt(zero, b) & l.lt(zero, disc) & (l.lt(past, zero) | l.lt(past * past, disc));
            // |oc|² − r² ≈ −2r·depth just inside.
            let inside = l.lt(cc, l.splat(-2.0 * EPS * r2.sqrt()));
            blocked = blocked | inside | ahead;
        }
        blocked
    }

    /// Lanes whose segment from `x` along unit `d` to distance `far` passes through a sphere
    /// past EPS: the chord [b − √(b² − c), b + √(b² − c)] overlaps (EPS, far). A point on a
    /// sphere's surface leaving it outward has both roots at about 0, so it does not block itself.
    #[inline(always)]
    fn block<L: Lanes>(&self, l: L, x: V3<L::F>, d: V3<L::F>, far: L::F) -> L::M {
        let mut blocked = l.lt(l.splat(0.0), l.splat(0.0));
        for (c, &r2) in self.center.iter().zip(&self.r2).take(self.n) {
            let oc = splat_v(l, *c) - x;
            let b = dot(l, oc, d);
            let root = l.sqrt(l.fma(b, b, l.splat(r2) - dot(l, oc, oc)));
            blocked = blocked | (l.lt(l.splat(EPS), b + root) & l.lt(b - root, far));
        }
        blocked
    }
}

impl Light {
    /// Stands in for a light in plain path tracing, which never reads it.
    pub const NONE: Light = Light {
        sphere: 0,
        slot: 0,
        normal: [0.0; 3],
        center: [0.0; 3],
        radius: 0.0,
        area_over_pi: 0.0,
        e1: [0.0; 3],
        e2: [0.0; 3],
        emission: [0.0; 3],
        occluders: None,
    };

    /// The cap of `scene` to sample: of the emitting spheres that reach into the box as a cap
    /// through one wall, the one with the most power (emission × disk area); the others, if any,
    /// are found by chance.
    pub fn find(scene: &Scene, k: &Tables) -> Result<Light, NoLight> {
        let emitters: Vec<usize> =
            (0..scene.spheres.len()).filter(|&i| scene.spheres[i].emission != Vec3::ZERO).collect();
        if emitters.is_empty() {
            return Err(NoLight::NoEmitter);
        }
        let walls = k.walls.as_ref().ok_or(NoLight::NotABox)?;
        let wall_ids = walls.ids();
        let best = emitters
            .iter()
            .filter_map(|&i| wall_ids.iter().find_map(|&w| Rim::of(scene, i, w, &wall_ids)).map(|rim| (i, rim)))
            .max_by(|(i, a), (j, b)| a.power(scene, *i).total_cmp(&b.power(scene, *j)));
        let (sphere, rim) = best.ok_or(NoLight::NoCap)?;
        let f = |v: Vec3| [v.x as f32, v.y as f32, v.z as f32];
        // Any two unit vectors spanning the rim's plane.
        let helper = if rim.normal.x.abs() < 0.5 { Vec3::new(1.0, 0.0, 0.0) } else { Vec3::new(0.0, 1.0, 0.0) };
        let e1 = rim.normal.cross(helper).norm();
        let e2 = rim.normal.cross(e1);
        Ok(Light {
            sphere,
            slot: u32::from(k.slot[sphere]),
            normal: f(rim.normal),
            center: f(rim.center),
            radius: rim.radius as f32,
            area_over_pi: (rim.radius * rim.radius) as f32,
            e1: f(e1),
            e2: f(e2),
            emission: f(scene.spheres[sphere].emission),
            occluders: Occluders::find(scene, sphere, &wall_ids),
        })
    }

    /// The light reflected toward the path at the hit point `x` (facing normal `nl`) in the
    /// `diffuse` lanes of `at`, times its `weight` (throughput × albedo): one shadow ray per lane
    /// to a point drawn uniformly on the disk with the two uniform numbers `(u, v)`. `None` when
    /// no lane can see the disk (nothing to add).
    #[inline(always)]
    pub fn direct<L: Lanes>(
        &self,
        l: L,
        k: &Tables,
        spheres: &Spheres<L>,
        at: Bounce<L>,
        (u, v): (L::F, L::F),
    ) -> Option<V3<L::F>> {
        let Bounce { x, nl, weight, diffuse } = at;
        let zero = l.splat(0.0);
        let r = l.sqrt(u) * l.splat(self.radius);
        let (cos_phi, sin_phi) = cos_sin_2pi(l, v);
        let p = fma3(
            l,
            splat_v(l, self.e1),
            r * cos_phi,
            fma3(l, splat_v(l, self.e2), r * sin_phi, splat_v(l, self.center)),
        );
        let w = p - x;
        let dist = l.sqrt(dot(l, w, w));
        let inv_d = l.splat(1.0) / dist;
        let dir = w * inv_d;
        let cos_x = dot(l, dir, nl);
        let lit = diffuse & l.lt(zero, cos_x);
        if l.bits(lit) == 0 {
            return None;
        }
        // Walls cannot be in the way: the room is convex and the cap inside it.
        let seen = match &self.occluders {
            Some(o) => lit & !o.block(l, x, dir, dist),
            None => {
                let (t, id) = nearest_beyond_walls(l, k, spheres, x, dir);
                lit & l.eq(l.to_f(id), l.splat(self.slot as f32)) & l.lt(t, l.splat(INF))
            }
        };
        // f/π · Le · cos θ_x · cos θ_p · A/d², with cos θ_p = |w·normal|/d.
        let g = cos_x * l.abs(dot(l, w, splat_v(l, self.normal))) * inv_d * inv_d * inv_d * l.splat(self.area_over_pi);
        let g = l.select(seen, g, zero);
        Some(weight.mul_each(splat_v(l, self.emission)) * g)
    }

    /// Lanes whose ray `o + t·d` (t > 0) crosses the plane inside the disk: directions the
    /// shadow rays cover.
    #[inline(always)]
    pub fn through_disk<L: Lanes>(&self, l: L, o: V3<L::F>, d: V3<L::F>) -> L::M {
        self.disk_hit(l, o, d).0
    }

    /// [`Light::through_disk`], and the distance t to the disk's plane.
    #[inline(always)]
    pub fn disk_hit<L: Lanes>(&self, l: L, o: V3<L::F>, d: V3<L::F>) -> (L::M, L::F) {
        let (n, m) = (splat_v(l, self.normal), splat_v(l, self.center));
        let t = dot(l, m - o, n) / dot(l, d, n);
        let q = fma3(l, d, t, o) - m;
        let (q1, q2) = (dot(l, q, splat_v(l, self.e1)), dot(l, q, splat_v(l, self.e2)));
        (l.lt(l.splat(0.0), t) & l.lt(l.fma(q1, q1, q2 * q2), l.splat(self.radius * self.radius)), t)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::uniform;
    use super::*;
    use crate::engine::fast::lanes::{LaneJob, MAX_W, SimdPath, dispatch};
    use crate::scene::{Material, Sphere};

    fn find(scene: &Scene) -> Result<Light, NoLight> {
        Light::find(scene, &Tables::new(scene, &scene.camera.frame(64, 48)))
    }

    /// smallpt's light: the sphere at index 8, its rim on the ceiling (y = 81.6) about 36 across.
    #[test]
    fn finds_smallpts_cap_under_the_ceiling() {
        let light = find(&Scene::cornell()).unwrap();
        assert_eq!((light.sphere, light.normal), (8, [0.0, -1.0, 0.0]));
        let [x, y, z] = light.center;
        assert!(x == 50.0 && z == 81.6 && (81.598..81.5995).contains(&y), "rim centre {:?}", light.center);
        assert!((17.93..17.96).contains(&light.radius), "rim radius {}", light.radius);
        let dot = |a: [f32; 3], b: [f32; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        assert!(dot(light.e1, light.e2).abs() < 1e-6 && dot(light.e1, light.normal).abs() < 1e-6);
    }

    #[test]
    fn a_light_that_is_not_a_cap_is_not_sampled() {
        let mut inside = Scene::cornell();
        inside.spheres[8] = Sphere { radius: 5.0, center: Vec3::new(50.0, 60.0, 80.0), ..inside.spheres[8] };
        assert_eq!(find(&inside), Err(NoLight::NoCap));
        let mut corner = Scene::cornell();
        corner.spheres[8].center.x = 5.0; // the rim crosses the left wall too
        assert_eq!(find(&corner), Err(NoLight::NoCap));
        let mut dark = Scene::cornell();
        dark.spheres[8].emission = Vec3::ZERO;
        assert_eq!(find(&dark), Err(NoLight::NoEmitter));
        let mut open = Scene::cornell();
        open.spheres.remove(3);
        assert_eq!(find(&open), Err(NoLight::NotABox));
    }

    /// Of two caps, the brighter is sampled; the other is left to chance.
    #[test]
    fn the_most_powerful_cap_is_sampled() {
        let mut two = Scene::cornell();
        let floor_light = Sphere {
            radius: 100.0,
            center: Vec3::new(50.0, -99.9, 100.0),
            emission: Vec3::new(300.0, 300.0, 300.0),
            color: Vec3::ZERO,
            material: Material::Diffuse,
        };
        two.spheres.push(floor_light);
        let light = find(&two).unwrap();
        assert_eq!(light.sphere, 9);
        assert!(light.center[1].abs() < 1e-2 && light.normal[1] > 0.99, "{light:?}");
    }

    /// At a point of the room, the shadow-ray estimate of the light it receives (weight 1)
    /// and the path tracer's (cosine-sampled directions that meet the light through the disk,
    /// times Le): means over `n` draws per lane, and the number of draws.
    struct AtPoint<'a> {
        k: &'a Tables,
        light: &'a Light,
        x: [f32; 3],
        nl: [f32; 3],
        n: usize,
    }

    impl LaneJob for AtPoint<'_> {
        type Output = (f64, f64, f64);
        fn run<L: Lanes>(self, l: L) -> (f64, f64, f64) {
            use super::super::intersect::{nearest, spheres};
            use super::super::math::orthonormal_basis;
            let sp = spheres(l, self.k);
            let (x, nl) = (splat_v(l, self.x), splat_v(l, self.nl));
            let ids: [u32; MAX_W] = std::array::from_fn(|i| i as u32 * 7919 + 1);
            let mut rng = l.load_u(&ids);
            let (mut nee, mut bsdf) = (0.0, 0.0);
            let all = l.lt(l.splat(0.0), l.splat(1.0));
            let mut a = [0f32; MAX_W];
            for _ in 0..self.n {
                let g = self
                    .light
                    .direct(
                        l,
                        self.k,
                        &sp,
                        Bounce { x, nl, weight: splat_v(l, [1.0; 3]), diffuse: all },
                        (uniform(l, &mut rng), uniform(l, &mut rng)),
                    )
                    .unwrap_or(splat_v(l, [0.0; 3]));
                l.store(g.y, &mut a);
                nee += a[..L::W].iter().map(|&v| f64::from(v)).sum::<f64>();
                let (u1, u2) = (uniform(l, &mut rng), uniform(l, &mut rng));
                let (c, s) = cos_sin_2pi(l, u1);
                let r = l.sqrt(u2);
                let (tu, tv) = orthonormal_basis(l, nl);
                let d = fma3(l, tu, c * r, fma3(l, tv, s * r, nl * l.sqrt(l.splat(1.0) - u2)));
                let (_, id) = nearest(l, self.k, &sp, x, d);
                let hit = l.eq(l.to_f(id), l.splat(self.light.slot as f32)) & self.light.through_disk(l, x, d);
                l.store(l.select(hit, l.splat(self.light.emission[1]), l.splat(0.0)), &mut a);
                bsdf += a[..L::W].iter().map(|&v| f64::from(v)).sum::<f64>();
            }
            let m = (self.n * L::W) as f64;
            (nee / m, bsdf / m, m)
        }
    }

    /// The shadow rays' estimate of the light a point receives has the path tracer's mean: on
    /// the floor under the light (against the closed form too), on the back wall, near the
    /// ceiling, and beside the mirror ball, which shadows part of the disk.
    #[test]
    fn shadow_rays_gather_what_paths_find_by_chance() {
        let scene = Scene::cornell();
        let k = Tables::new(&scene, &scene.camera.frame(64, 48));
        assert!(
            Light::find(&scene, &k).unwrap().occluders.is_some(),
            "smallpt's balls are clear of the light: only they are tested"
        );
        gathers_what_paths_find(&scene, true);
        // A ball that pokes into the light's sphere: the shadow rays test every sphere but the
        // walls, and stop at the light.
        let mut poking = Scene::cornell();
        poking.spheres.push(Sphere { radius: 7.0, center: Vec3::new(45.0, 75.0, 81.6), ..poking.spheres[6] });
        let k = Tables::new(&poking, &poking.camera.frame(64, 48));
        assert_eq!(Light::find(&poking, &k).unwrap().occluders, None);
        gathers_what_paths_find(&poking, false);
    }

    /// See [`shadow_rays_gather_what_paths_find_by_chance`]; with `open_floor` the floor centre
    /// sees the whole disk, and the closed form applies.
    fn gathers_what_paths_find(scene: &Scene, open_floor: bool) {
        let k = Tables::new(scene, &scene.camera.frame(64, 48));
        let light = Light::find(scene, &k).unwrap();
        let (r, h) = (f64::from(light.radius), 81.6);
        let form = 12.0 * r * r / (h * h + r * r);
        let (floor, _, _) = dispatch(
            SimdPath::detected(),
            AtPoint { k: &k, light: &light, x: [50.0, 0.0, 81.6], nl: [0.0, 1.0, 0.0], n: 1 << 12 },
        );
        if open_floor {
            assert!((floor - form).abs() < 1e-3 * form, "floor centre: {floor} vs the closed form {form}");
        }
        for (x, nl) in [
            ([50.0, 0.0, 81.6], [0.0, 1.0, 0.0]),
            ([50.0, 40.0, 0.0], [0.0, 0.0, 1.0]),
            ([1.0, 78.0, 81.6], [1.0, 0.0, 0.0]),
            ([27.0, 0.0, 47.0 + 20.0], [0.0, 1.0, 0.0]),
        ] {
            let (nee, bsdf, n) = dispatch(SimdPath::detected(), AtPoint { k: &k, light: &light, x, nl, n: 1 << 16 });
            // The paths' estimate is Le times a hit frequency: its standard error is binomial.
            let se = 12.0 * ((bsdf / 12.0) * (1.0 - bsdf / 12.0) / n).sqrt();
            eprintln!("{x:?}: shadow rays {nee:.5}, paths {bsdf:.5} ± {se:.5}, floor closed form {form:.5}");
            assert!((nee - bsdf).abs() < 4.0 * se, "{x:?}: {nee} vs {bsdf} ± {se}");
        }
    }
}
