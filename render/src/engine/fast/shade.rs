//! What happens at a hit, for every lane at once: Russian roulette, then the next direction by
//! the surface's material (cosine-weighted diffuse, mirror, or glass with Schlick's Fresnel and
//! smallpt's splitting at shallow depth).

use super::intersect::INF;
use super::lanes::{Lanes, MAX_W};
use super::math::{V3, cos_sin_2pi, dot, fma3, orthonormal_basis, sel3, splat_v, store3};
use super::rng::uniform;
use super::tables::{Surface, Tables};
use crate::scene::GLASS_IOR;

/// Paths deeper than this continue only by Russian roulette on the surface's largest albedo.
const ROULETTE_DEPTH: f32 = 5.0;
/// Past this depth a path survives the roulette with probability at most `DEEP_SURVIVAL` (its
/// weight then 1/`DEEP_SURVIVAL`: unbiased as any roulette is). Paths this deep are almost all
/// rays circling inside the glass ball by total internal reflection, which exact geometry does
/// not allow (a ray that entered a sphere meets it from inside below the critical angle) but f32
/// rounding did: on smallpt's albedo of 0.999 each ran on for about a thousand segments that add
/// nothing, and as the last live lane of a batch kept the other lanes waiting. Putting hit
/// points back on the ball (in `scatter`) removes most of them (total internal reflections in a
/// 512×384 spp 64 render: 1.24 M → 42 000); this roulette ends the rest soon.
const DEEP_DEPTH: f32 = 64.0;
const DEEP_SURVIVAL: f32 = 0.5;
/// At this depth or less, glass traces both the reflected and the refracted ray.
pub(super) const SPLIT_DEPTH: f32 = 2.0;

/// Per-lane path state, kept in registers from step to step.
#[derive(Clone, Copy)]
pub(super) struct Paths<L: Lanes> {
    pub o: V3<L::F>,
    pub d: V3<L::F>,
    /// Throughput: the product of albedos and branch weights so far.
    pub thr: V3<L::F>,
    pub depth: L::F,
    pub rng: L::U,
    /// Light sampling only: the weight of the light met through its disk on this segment: 0
    /// after a diffuse bounce (its shadow ray sampled that light), the balance heuristic's
    /// weight after a diffuse bounce and the mirror (whose image of the light is sampled too,
    /// see `mirror.rs`), else 1.
    pub lw: L::F,
    /// Light sampling only: the density (per solid angle) of the last bounce's direction if it
    /// was diffuse, cos θ/π; else 0.
    pub pb: L::F,
}

impl<L: Lanes> Paths<L> {
    /// In lanes `m`, the state a camera ray starts with beside its origin, direction and stream:
    /// throughput 1, depth 0, no diffuse bounce yet.
    #[inline(always)]
    pub fn begin(&mut self, l: L, m: L::M) {
        self.thr = sel3(l, m, splat_v(l, [1.0; 3]), self.thr);
        self.depth = l.select(m, l.splat(0.0), self.depth);
        self.lw = l.select(m, l.splat(1.0), self.lw);
        self.pb = l.select(m, l.splat(0.0), self.pb);
    }
}

/// Reflected direction and throughput of the glass splits made in a step, per lane.
pub(super) struct Splits {
    pub refl: [[f32; MAX_W]; 3],
    pub refl_thr: [[f32; MAX_W]; 3],
}

/// What light sampling needs of a step's hits: the hit point, the normal facing the ray, the
/// throughput times the albedo (before roulette), and the lanes that hit a diffuse surface that
/// reflects light.
#[derive(Clone, Copy)]
pub(super) struct Bounce<L: Lanes> {
    pub x: V3<L::F>,
    pub nl: V3<L::F>,
    pub weight: V3<L::F>,
    pub diffuse: L::M,
}

/// Each lane's nearest hit: distance and the sphere's slot (see [`Tables::slot`]).
#[derive(Clone, Copy)]
pub(super) struct Hit<L: Lanes> {
    pub t: L::F,
    pub id: L::U,
}

impl<L: Lanes> Hit<L> {
    /// Lanes whose ray hit nothing.
    #[inline(always)]
    pub fn miss(self, l: L) -> L::M {
        !l.lt(self.t, l.splat(INF))
    }

    /// Lanes whose hit sphere emits light.
    #[inline(always)]
    pub fn emits(self, l: L, k: &Tables) -> L::M {
        l.lt(l.splat(0.0), l.lookup(&k.emits, self.id)) & !self.miss(l)
    }
}

/// A step's random numbers and what the diffuse direction makes of them: the roulette's u0,
/// glass's u1, and φ = 2π·u1, sin θ = √u2, cos θ = √(1 − u2). They depend on nothing the
/// intersection finds, so the step draws them before it intersects: then they are computed in
/// the intersection's waits, and a mispredicted branch there does not throw them away.
#[derive(Clone, Copy)]
pub(super) struct Draws<L: Lanes> {
    u0: L::F,
    u1: L::F,
    cos_phi: L::F,
    sin_phi: L::F,
    r2s: L::F,
    cos_theta: L::F,
}

/// [`Draws`] from the paths' random streams (three numbers per lane, in smallpt's order).
#[inline(always)]
pub(super) fn draws<L: Lanes>(l: L, rng: &mut L::U) -> Draws<L> {
    let (u0, u1, u2) = (uniform(l, rng), uniform(l, rng), uniform(l, rng));
    let (cos_phi, sin_phi) = cos_sin_2pi(l, u1);
    Draws { u0, u1, cos_phi, sin_phi, r2s: l.sqrt(u2), cos_theta: l.sqrt(l.splat(1.0) - u2) }
}

/// Moves every lane's path to its hit and on in a new direction, with the new throughput.
/// Returns bit masks of lanes whose path ended (missed, lost the roulette, or hit a black sphere
/// and can add nothing more) and of lanes that split at glass (their reflected branch is in
/// `splits`; both bits set: the refracted branch ended, the reflected one is pending), and the
/// [`Bounce`].
#[inline(always)]
pub(super) fn scatter<L: Lanes>(
    l: L,
    k: &Tables,
    path: &mut Paths<L>,
    hit: Hit<L>,
    draws: Draws<L>,
    splits: &mut Splits,
) -> (u32, u32, Bounce<L>) {
    let (o, d, id) = (path.o, path.d, hit.id);
    let miss = hit.miss(l);
    let x = fma3(l, d, hit.t, o);
    // n = (x − c)/|x − c| without a square root or a divide on the way to the next segment:
    // n₀ = (x − c)/r is unit to ~1e-6 (x is on the sphere to rounding) and one Newton step,
    // n₀·(3 − |n₀|²)/2, makes it unit to rounding. (n₀ alone is not enough: inside the glass
    // ball a short normal shrinks each reflected direction, and the error feeds on itself.)
    let c = k.hit3(l, &k.center, id);
    let n = (x - c) * k.hit(l, &k.inv_radius, id);
    let n = n * l.fma(l.splat(-0.5), dot(l, n, n), l.splat(1.5));
    // The hit point back on a small sphere, c + r·n. As computed, a grazing hit's point can lie
    // 1e-4 inside the ball (the discriminant's rounding); a ray that then leaves it by external
    // reflection found the ball again a few thousandths on, from inside, past the critical
    // angle, and circled inside it by total internal reflection for hundreds of segments.
    let r = k.hit(l, &k.reproject, id);
    let x = sel3(l, l.lt(l.splat(0.0), r), fma3(l, n, r, c), x);
    let dn = dot(l, n, d);
    let into = l.lt(dn, l.splat(0.0));
    let nl = sel3(l, into, n, -n);
    let depth = path.depth + l.splat(1.0);
    (path.o, path.depth) = (x, depth);

    // Roulette past ROULETTE_DEPTH on the largest albedo p (at most DEEP_SURVIVAL past
    // DEEP_DEPTH): survive with probability p, weight f/p.
    let Draws { u0, u1, cos_phi, sin_phi, r2s, cos_theta } = draws;
    let f = k.hit3(l, &k.color, id);
    let p = l.max(f.x, l.max(f.y, f.z));
    let p = l.select(l.lt(l.splat(DEEP_DEPTH), depth), l.min(p, l.splat(DEEP_SURVIVAL)), p);
    let roulette = l.lt(l.splat(ROULETTE_DEPTH), depth);
    let dies = roulette & !l.lt(u0, p);
    let weight = path.thr.mul_each(f);
    let mut thr = weight * l.select(roulette, l.splat(1.0) / p, l.splat(1.0));

    // Diffuse: cosine-weighted around nl (see [`Draws`]).
    let (tu, tv) = orthonormal_basis(l, nl);
    let diffuse_dir = fma3(l, tu, cos_phi * r2s, fma3(l, tv, sin_phi * r2s, nl * cos_theta));
    // Mirror.
    let refl = fma3(l, n, l.splat(-2.0) * dn, d);
    let kind = k.hit(l, &k.kind, id);
    // A lane that hit a black sphere ends this step (below); its table entries are not its
    // sphere's (see `Tables::slot`), and it must not split.
    let black = l.lt(l.splat(k.live as f32 - 0.5), l.to_f(id)) & !miss;
    let glass = Surface::Glass.is(l, kind) & !miss & !black;
    let mirror = Surface::Mirror.is(l, kind);
    let mut split = l.lt(l.splat(0.0), l.splat(0.0));
    // Glass (Snell with Schlick's Fresnel; total internal reflection mirrors) only when a lane
    // hit glass. At 8 and 16 lanes (one AVX2 vector, paired AVX2) the branch still pays: the
    // block on every step measured ×0.98 and ×0.99. Of 32 lanes (paired AVX-512) three steps in
    // four have one, and the branch, mispredicted the other times, cost more than the block
    // does (1.9 % more segments/s without it).
    let new_d = if L::W >= 32 || l.bits(glass) != 0 {
        let (nc, nt) = (1.0, GLASS_IOR as f32);
        let nnt = l.select(into, l.splat(nc / nt), l.splat(nt / nc));
        let ddn = l.select(into, dn, -dn); // d·nl
        let cos2t = l.splat(1.0) - nnt * nnt * (l.splat(1.0) - ddn * ddn);
        let tir = l.lt(cos2t, l.splat(0.0));
        // Unit to rounding (|tdir|² = nnt²(1 − ddn²) + cos2t = 1), so unlike smallpt we do
        // not normalise it: the error is a few ulps and the next diffuse bounce resets it.
        let cos_t = l.sqrt(l.max(cos2t, l.splat(0.0)));
        let tdir = d * nnt - nl * l.fma(ddn, nnt, cos_t);
        let r0 = (nt - nc) * (nt - nc) / ((nt + nc) * (nt + nc));
        // Schlick's cosine is the outer side's: −d·nl entering; leaving, smallpt's tdir·n, which
        // is cos θt itself (there nl = −n and ddn = −d·n, so tdir·n = nnt d·n + ddn nnt + cos θt
        // = cos θt): taken as is, the step does not wait on tdir and a dot product for it.
        let cc = l.splat(1.0) - l.select(into, -ddn, cos_t);
        let cc2 = cc * cc;
        let re = l.fma(l.splat(1.0 - r0), cc2 * cc2 * cc, l.splat(r0));
        let tr = l.splat(1.0) - re;
        let pr = l.fma(l.splat(0.5), re, l.splat(0.25));
        split = glass & !tir & !l.lt(l.splat(SPLIT_DEPTH), depth);
        let pick_refl = tir | (!split & l.lt(u1, pr));
        // re/pr or tr/(1 − pr) by the branch taken: one divide.
        let picked = l.select(pick_refl, re, tr) / l.select(pick_refl, pr, l.splat(1.0) - pr);
        // 1 where the throughput stays (not glass, or total internal reflection): thr·1 = thr.
        let glass_w = l.select(glass & !tir, l.select(split, tr, picked), l.splat(1.0));
        if l.bits(split) != 0 {
            store3(l, refl, &mut splits.refl);
            store3(l, thr * re, &mut splits.refl_thr);
        }
        thr = thr * glass_w;
        let (reflects, refracts) = (mirror | (glass & pick_refl), glass & !pick_refl);
        sel3(l, refracts, tdir, sel3(l, reflects, refl, diffuse_dir))
    } else {
        sel3(l, mirror, refl, diffuse_dir)
    };
    (path.d, path.thr) = (new_d, thr);
    // A path that hit a black sphere (smallpt's front wall or light: albedo 0) has throughput
    // 0 and can add only 0·L to its sample from here on: smallpt traces it on until roulette
    // ends it, about a fifth of all its segments; we end it.
    let diffuse = Surface::Diffuse.is(l, kind) & !miss & !black;
    (l.bits(miss | dies | black) & L::ALL, l.bits(split) & L::ALL, Bounce { x, nl, weight, diffuse })
}
