//! The light seen in a mirror ball, sampled: at each diffuse hit `nee` also aims at the mirror.
//!
//! **Why.** Shadow rays find the light only straight on. Light that reaches a diffuse surface by
//! way of smallpt's mirror ball (its image of the light, bright on the ceiling around the light
//! and on the walls) was found only by the diffuse bounce happening to meet the ball where it
//! shows the light: 38 % of a nee render's variance (128×96, spp 256; BENCHMARKS.md).
//!
//! **How.** At a diffuse hit x, a point q drawn uniformly on the half of the ball facing x
//! (area sampling: no frame to build around x→c and no ray–ball intersection, and the normal of
//! the reflection is q's own) brings the light if the ray x→q, reflected at q, crosses the light's
//! disk (see `light.rs`) with nothing in the way of either segment. The diffuse bounce still finds
//! the same light by chance; the two are combined by the balance heuristic on the direction at x,
//! with densities (per solid angle) p_q = |q − x|²/(2πr²·cos θ_q) and p_b = cos θ_x/π: each
//! counts what it finds with weight p/(p_b + p_q), so that light is counted once in expectation
//! (unbiased whatever p_q is, as long as both sides use the same one). A path carries the weight
//! for the light it may meet next ([`Paths::lw`](super::shade::Paths)): 0 after a diffuse bounce
//! (the shadow ray took it), p_b/(p_b + p_q) after a diffuse bounce and the mirror, 1 otherwise.
//!
//! **Measured** (AVX2, 256×192 against a spp 4096 render, three seeds): at spp 64 the MSE falls
//! by 33 % for about 30 % more time; at spp 256 by 31 % for 33 %. Sampling a cone around x→c instead
//! (uniform in solid angle, a frame and an intersection per lane) removed 35 % for 45 % more
//! time. The glass ball's share (48 %) was tried the same way, refracting in and out (Fresnel
//! weights), with one of the two balls picked per hit: −48 % MSE, +77 % time; not kept.

use super::lanes::Lanes;
use super::light::{Light, Occluders};
use super::math::{V3, cos_sin_2pi, dot, fma3, splat_v};
use super::shade::Bounce;
use super::tables::Tables;
use crate::scene::{Material, Scene};
use crate::vec3::Vec3;

/// A mirror sphere inside the room and clear of the light, whose image of the light is sampled.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Mirror {
    /// Its slot in the hit tables.
    pub slot: u32,
    center: [f32; 3],
    radius: f32,
    /// 2π·r and 2r², of the densities.
    two_pi_r: f32,
    two_r2: f32,
    /// Its albedo.
    color: [f32; 3],
    /// The other spheres that can be in the way (walls and the light aside).
    others: Occluders,
}

impl Mirror {
    /// The first mirror sphere of `scene` that is neither a wall nor the light, when the
    /// spheres other than the walls and the light can be the shadow rays' occluders (none meets
    /// the light's sphere); `None` otherwise (the mirror's light is then found by chance only).
    pub fn find(scene: &Scene, light: &Light, k: &Tables) -> Option<Mirror> {
        let walls = k.walls.as_ref()?.ids();
        light.occluders.as_ref()?;
        let i = (0..scene.spheres.len()).find(|&i| {
            let s = &scene.spheres[i];
            i != light.sphere && !walls.contains(&i) && s.material == Material::Mirror && s.emission == Vec3::ZERO
        })?;
        let s = &scene.spheres[i];
        let mut skip = walls;
        skip.push(i);
        let f = |v: Vec3| [v.x as f32, v.y as f32, v.z as f32];
        Some(Mirror {
            slot: u32::from(k.slot[i]),
            center: f(s.center),
            radius: s.radius as f32,
            two_pi_r: (std::f64::consts::TAU * s.radius) as f32,
            two_r2: (2.0 * s.radius * s.radius) as f32,
            color: f(s.color),
            others: Occluders::find(scene, light.sphere, &skip)?,
        })
    }

    /// The weight of light met through the disk after a diffuse bounce from `from` (direction
    /// density `pb`) that reaches the mirror `t` along unit `d`: p_b/(p_b + p_q).
    #[inline(always)]
    pub fn bounce_weight<L: Lanes>(&self, l: L, from: V3<L::F>, d: V3<L::F>, t: L::F, pb: L::F) -> L::F {
        let m = fma3(l, d, t, from);
        // p_b/(p_b + p_q) = X/(X + t²), X = p_b·2πr²·cos θ_q, r·cos θ_q = −d·(m − c).
        let x = pb * l.splat(self.two_pi_r) * -dot(l, d, m - splat_v(l, self.center));
        x / l.fma(t, t, x)
    }

    /// The light seen in the mirror from the hit point (facing normal `nl`) in the `diffuse` lanes
    /// of `at`, times its weight (throughput × albedo), from one point drawn on the ball with the
    /// two uniform numbers `(u1, u2)`; `None` when no lane gets any.
    #[inline(always)]
    pub fn aimed<L: Lanes>(&self, l: L, light: &Light, at: Bounce<L>, (u1, u2): (L::F, L::F)) -> Option<V3<L::F>> {
        let Bounce { x, nl, weight, diffuse } = at;
        let (zero, one) = (l.splat(0.0), l.splat(1.0));
        // s uniform on the unit sphere (z = 1 − 2u), turned to the half facing x.
        let z = l.fma(l.splat(-2.0), u1, one);
        let rxy = l.sqrt(l.max(one - z * z, zero));
        let (cp, sp) = cos_sin_2pi(l, u2);
        let c = splat_v(l, self.center);
        let xc = x - c;
        let toward = dot(l, xc, V3 { x: rxy * cp, y: rxy * sp, z });
        let flip = l.with_sign_of(one, toward);
        let s = V3 { x: rxy * cp * flip, y: rxy * sp * flip, z: z * flip };
        let q = fma3(l, s, l.splat(self.radius), c);
        let w = q - x;
        let (wn, ws) = (dot(l, w, nl), dot(l, w, s));
        // q faces x (w·s < 0), above x's surface, and x outside the ball.
        let ok = diffuse & l.lt(zero, wn) & l.lt(ws, zero) & l.lt(l.splat(0.5 * self.two_r2), dot(l, xc, xc));
        if l.bits(ok) == 0 {
            return None;
        }
        let refl = fma3(l, s, l.splat(-2.0) * ws, w);
        let (through, far) = light.disk_hit(l, q, refl);
        let a = dot(l, w, w);
        let to_disk = refl * far;
        let seen = ok
            & through
            & !self.others.block_segment(l, x, w, a)
            & !self.others.block_segment(l, q, to_disk, dot(l, to_disk, to_disk));
        if l.bits(seen) == 0 {
            return None;
        }
        // f/π · Le · ρ · cos θ_x / (p_b + p_q) = f · Le · ρ · p_b/(p_b + p_q), where
        // p_b/(p_b + p_q) = X/(X + |w|⁴) with X = 2r²·(−w·s)·(w·nl).
        let xx = l.splat(self.two_r2) * -ws * wn;
        let g = l.select(seen, xx / l.fma(a, a, xx), zero);
        let le = [0, 1, 2].map(|i| light.emission[i] * self.color[i]);
        Some(weight.mul_each(splat_v(l, le)) * g)
    }
}

#[cfg(test)]
mod tests {
    use super::super::intersect::{nearest, spheres};
    use super::super::lanes::{LaneJob, MAX_W, SimdPath, dispatch};
    use super::super::math::orthonormal_basis;
    use super::super::rng::uniform;
    use super::*;

    fn parts(scene: &Scene) -> (Tables, Light) {
        let k = Tables::new(scene, &scene.camera.frame(64, 48));
        let light = Light::find(scene, &k).unwrap();
        (k, light)
    }

    #[test]
    fn finds_smallpts_mirror_ball() {
        let scene = Scene::cornell();
        let (k, light) = parts(&scene);
        let m = Mirror::find(&scene, &light, &k).expect("smallpt's mirror ball");
        assert_eq!((m.center, m.radius), ([27.0, 16.5, 47.0], 16.5));
        assert_eq!(m.others.count(), 1, "the glass ball can be in the way");
        let mut none = Scene::cornell();
        none.spheres[6].material = Material::Diffuse;
        let (k, light) = parts(&none);
        assert_eq!(Mirror::find(&none, &light, &k), None);
        // A ball that pokes into the light's sphere: shadow rays test every sphere, and the
        // mirror's light is left to chance.
        let mut poking = Scene::cornell();
        poking.spheres.push(crate::scene::Sphere {
            radius: 7.0,
            center: Vec3::new(45.0, 75.0, 81.6),
            ..poking.spheres[6]
        });
        let (k, light) = parts(&poking);
        assert_eq!(Mirror::find(&poking, &light, &k), None);
    }

    /// At a point of the room, per draw (green channel, weight 1): the mirror's light by the
    /// sampled point, and by a cosine-sampled bounce that meets the mirror, is reflected and
    /// meets the light through its disk (as a path does), weighted and unweighted.
    struct AtPoint<'a> {
        k: &'a Tables,
        light: &'a Light,
        mirror: &'a Mirror,
        x: [f32; 3],
        nl: [f32; 3],
        n: usize,
    }

    /// Sums over the draws: the sampled point's light, the bounce's weighted and unweighted,
    /// and of (sampled + weighted − unweighted) and its square; and the number of draws.
    type Sums = ([f64; 5], f64);

    impl LaneJob for AtPoint<'_> {
        type Output = Sums;
        fn run<L: Lanes>(self, l: L) -> Sums {
            let sp = spheres(l, self.k);
            let (x, nl) = (splat_v(l, self.x), splat_v(l, self.nl));
            let ids: [u32; MAX_W] = std::array::from_fn(|i| i as u32 * 7919 + 3);
            let mut rng = l.load_u(&ids);
            let all = l.lt(l.splat(0.0), l.splat(1.0));
            let zero = l.splat(0.0);
            let (c, inv_r) = (splat_v(l, self.mirror.center), l.splat(1.0 / self.mirror.radius));
            let le = self.light.emission[1] * self.mirror.color[1];
            let mut sums = [0.0; 5];
            let (mut a, mut b, mut u) = ([0f32; MAX_W], [0f32; MAX_W], [0f32; MAX_W]);
            for _ in 0..self.n {
                let aimed = self.mirror.aimed(
                    l,
                    self.light,
                    Bounce { x, nl, weight: splat_v(l, [1.0; 3]), diffuse: all },
                    (uniform(l, &mut rng), uniform(l, &mut rng)),
                );
                l.store(aimed.map_or(zero, |v| v.y), &mut a);
                let (u1, u2) = (uniform(l, &mut rng), uniform(l, &mut rng));
                let (cp, sn) = cos_sin_2pi(l, u1);
                let r = l.sqrt(u2);
                let (tu, tv) = orthonormal_basis(l, nl);
                let cos = l.sqrt(l.splat(1.0) - u2);
                let d = fma3(l, tu, cp * r, fma3(l, tv, sn * r, nl * cos));
                let (t, id) = nearest(l, self.k, &sp, x, d);
                let at_mirror = l.eq(l.to_f(id), l.splat(self.mirror.slot as f32)) & l.lt(t, l.splat(1e19));
                let m = fma3(l, d, t, x);
                let n = (m - c) * inv_r;
                let refl = fma3(l, n, l.splat(-2.0) * dot(l, d, n), d);
                let (_, id2) = nearest(l, self.k, &sp, m, refl);
                let lit = at_mirror
                    & l.eq(l.to_f(id2), l.splat(self.light.slot as f32))
                    & self.light.through_disk(l, m, refl);
                let found = l.select(lit, l.splat(le), zero);
                let pb = cos * l.splat(std::f32::consts::FRAC_1_PI);
                l.store(found * self.mirror.bounce_weight(l, x, d, t, pb), &mut b);
                l.store(found, &mut u);
                for i in 0..L::W {
                    let (a, b, u) = (f64::from(a[i]), f64::from(b[i]), f64::from(u[i]));
                    let diff = a + b - u;
                    for (s, v) in sums.iter_mut().zip([a, b, u, diff, diff * diff]) {
                        *s += v;
                    }
                }
            }
            (sums, (self.n * L::W) as f64)
        }
    }

    /// The sampled point and the weighted bounce together find what the bounce alone finds, on
    /// average, where the mirror shows the light: on the ceiling beside it, the floor, two walls.
    #[test]
    fn sampled_and_weighted_bounced_light_add_up() {
        let scene = Scene::cornell();
        let (k, light) = parts(&scene);
        let mirror = Mirror::find(&scene, &light, &k).unwrap();
        for (x, nl) in [
            ([50.0, 81.58, 50.0], [0.0, -1.0, 0.0]),
            ([60.0, 0.0, 60.0], [0.0, 1.0, 0.0]),
            ([1.0, 40.0, 90.0], [1.0, 0.0, 0.0]),
            ([50.0, 30.0, 0.0], [0.0, 0.0, 1.0]),
        ] {
            let job = AtPoint { k: &k, light: &light, mirror: &mirror, x, nl, n: 1 << 16 };
            let ([aimed, weighted, alone, diff, diff2], n) = dispatch(SimdPath::detected(), job);
            let (aimed, weighted, alone, diff) = (aimed / n, weighted / n, alone / n, diff / n);
            let se = ((diff2 / n - diff * diff) / n).sqrt();
            eprintln!(
                "{x:?}: sampled {aimed:.5} + weighted {weighted:.5} vs bounce {alone:.5} (difference {diff:.5} ± {se:.5})"
            );
            assert!(alone > 1e-3 && aimed > 0.5 * alone, "{x:?}: the mirror shows the light here");
            assert!(weighted > 0.0 && weighted < 0.5 * alone, "{x:?}: the balance heuristic splits it");
            assert!(diff.abs() < 4.0 * se, "{x:?}: {aimed} + {weighted} vs {alone} ± {se}");
        }
    }
}
