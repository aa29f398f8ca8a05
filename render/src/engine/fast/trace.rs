//! The trace loop, written once over [`Lanes`]: W independent camera samples in W SIMD lanes
//! (ISPC style). Each step traces one segment per lane; a lane whose path ends takes the next
//! sample of the batch, so lanes stay busy. Glass splits at shallow depth push the reflected
//! branch on a two-entry per-lane stack, traced after the refracted one. With a [`Light`] to
//! sample (`engine=nee`), each diffuse hit also casts a shadow ray, and with a [`Mirror`] one by
//! way of the mirror ball.

use super::camera::{Camera, CameraRays, Samples};
use super::intersect::{Spheres, nearest, spheres};
use super::lanes::{LaneJob, Lanes, MAX_W};
use super::light::Light;
use super::math::{V3, dot, load3, sel3, set_bits, splat_v, store3};
use super::mirror::Mirror;
use super::rng::uniform;
use super::shade::{Hit, Paths, Splits, draws, scatter};
use super::tables::Tables;

/// Glass splits happen at depths 1 and 2 only (`shade::SPLIT_DEPTH`), so a lane holds at most
/// two pending branches.
const STACK: usize = 2;
/// Lane holds no sample.
const IDLE: u32 = u32::MAX;

/// A pending glass branch: origin, direction, throughput, depth.
#[derive(Clone, Copy, Default)]
struct Branch {
    o: [f32; 3],
    d: [f32; 3],
    t: [f32; 3],
    depth: f32,
}

/// Per-lane bookkeeping in memory. (A lane that starts a path is blended into [`Paths`] in
/// registers: written lane by lane to memory, the state could not be read back as vectors until
/// the narrow stores had retired — no store-to-load forwarding — a stall on every step.)
struct State {
    splits: Splits,
    sample: [u32; MAX_W],
    stack: [[Branch; STACK]; MAX_W],
    depth_of_stack: [u8; MAX_W],
    /// Light sampling only: what the shadow rays gathered for each lane's sample so far. In
    /// memory, not in [`Paths`]: on AVX2 one vector of path state holds 11 of the 16 registers,
    /// and three more for this sum, read only when a shadow ray finds the light, cost spills on
    /// every step (here: 6 % fewer instructions per `nee` sample, 4 % less time).
    gathered: [[f32; MAX_W]; 3],
}

/// One batch: consecutive pixels of one row, and per sample the radiance it gathered.
pub(super) struct Work {
    /// The row, the first pixel, and the samples of each subpixel.
    pub samples: Samples,
    /// Pixels in the batch.
    pub pixels: u32,
    /// Radiance per sample, indexed `(pixel*4 + subpixel)*count + k` for sample `first + k`.
    pub results: Vec<[f32; 3]>,
    /// Segments traced.
    pub segments: u64,
    /// Segments that started outside smallpt's box: rays that leaked through a wall.
    #[cfg(test)]
    pub outside: u64,
    /// Segments of paths deeper than [`DEEP`]: almost only rays trapped by rounding.
    #[cfg(test)]
    pub deep: u64,
}

/// What [`Work::deep`] counts from: smallpt's diffuse albedos (at most 0.75) leave a path this
/// deep about once in 10⁵ samples.
#[cfg(test)]
pub(super) const DEEP: f32 = 40.0;

impl Work {
    /// A batch of no pixels yet: samples `first .. first + count` of each subpixel, on row `y`.
    pub fn new(y: u32, first: u32, count: u32) -> Work {
        Work {
            samples: Samples { y, x0: 0, first, count },
            pixels: 0,
            results: Vec::new(),
            segments: 0,
            #[cfg(test)]
            outside: 0,
            #[cfg(test)]
            deep: 0,
        }
    }
}

/// A render's scene tables and camera, and the light its shadow rays aim at (none: plain path
/// tracing): what a batch is traced with.
pub(super) struct Trace {
    pub tables: Tables,
    pub camera: Camera,
    pub light: Option<Light>,
    /// With a light: a mirror ball whose image of it is sampled too.
    pub mirror: Option<Mirror>,
}

/// One batch traced with a [`Trace`], as a job for any lane width.
pub(super) struct Batch<'a> {
    pub trace: &'a Trace,
    pub work: &'a mut Work,
}

impl LaneJob for Batch<'_> {
    type Output = ();
    #[inline(always)]
    fn run<L: Lanes>(self, l: L) {
        match &self.trace.light {
            Some(light) => self.trace.run::<L, true>(l, light, self.work),
            None => self.trace.run::<L, false>(l, &Light::NONE, self.work),
        }
    }
}

impl Trace {
    /// Traces every sample of `work`, `L::W` at a time; with shadow rays to `light` when `NEE`.
    #[inline(always)]
    fn run<L: Lanes, const NEE: bool>(&self, l: L, light: &Light, work: &mut Work) {
        let total = work.pixels * 4 * work.samples.count;
        work.results.clear();
        work.results.resize(total as usize, [0.0; 3]);
        let z = [[0.0; MAX_W]; 3];
        let zero = splat_v(l, [0.0; 3]);
        let mut p = Paths {
            o: zero,
            d: zero,
            thr: zero,
            depth: l.splat(0.0),
            rng: l.splat_u(0),
            lw: l.splat(1.0),
            pb: l.splat(0.0),
        };
        let mut st = State {
            splits: Splits { refl: z, refl_thr: z },
            sample: [IDLE; MAX_W],
            stack: [[Branch::default(); STACK]; MAX_W],
            depth_of_stack: [0; MAX_W],
            gathered: z,
        };
        let mut cams = CameraRays::new();
        let spheres = spheres(l, &self.tables);
        if L::EXPAND {
            self.run_expanding::<L, NEE>(l, light, &spheres, &mut p, &mut st, work, &mut cams);
            return;
        }
        let mut next = 0;
        let mut active = 0u64;
        for lane in 0..L::W {
            if next < total {
                self.start(l, &mut p, &mut st, lane, next, work, &mut cams);
                next += 1;
                active += 1;
            }
        }
        while active > 0 {
            work.segments += active;
            #[cfg(test)]
            self.count_strays(l, &p, (0..L::W).filter(|&i| st.sample[i] != IDLE).fold(0, |m, i| m | 1 << i), work);
            let (done, split) = self.step::<L, NEE>(l, light, &spheres, &mut p, &mut st, &mut work.results);
            for i in set_bits(done | split) {
                if st.sample[i] == IDLE {
                    continue;
                }
                if split >> i & 1 == 1 {
                    push(l, &p, &mut st, i);
                }
                if NEE && done >> i & 1 == 1 {
                    flush(&mut st, i, &mut work.results);
                }
                if done >> i & 1 == 1 && !pop(l, &mut p, &mut st, i) {
                    if next < total {
                        self.start(l, &mut p, &mut st, i, next, work, &mut cams);
                        next += 1;
                    } else {
                        st.sample[i] = IDLE;
                        active -= 1;
                    }
                }
            }
        }
    }

    /// [`Trace::run`]'s loop where [`Lanes::EXPAND`]: lanes whose path ended with nothing
    /// pending take the next samples all at once (one expand per component from the camera
    /// rays) instead of one by one; only glass branches (rare) are handled lane by lane. Each
    /// lane still takes samples in the same order, so the results are the same.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run_expanding<L: Lanes, const NEE: bool>(
        &self,
        l: L,
        light: &Light,
        spheres: &Spheres<L>,
        p: &mut Paths<L>,
        st: &mut State,
        work: &mut Work,
        cams: &mut CameraRays,
    ) {
        let total = work.pixels * 4 * work.samples.count;
        // Lanes with no sample, and lanes with a glass branch on their stack.
        let (mut idle, mut pending) = (0u32, 0u32);
        let mut samples = l.splat_u(IDLE);
        let mut next = 0;
        self.refill(l, p, L::ALL, &mut next, total, &mut samples, &mut idle, work, cams);
        l.store_u(samples, &mut st.sample);
        while idle != L::ALL {
            work.segments += u64::from((L::ALL & !idle).count_ones());
            #[cfg(test)]
            self.count_strays(l, p, L::ALL & !idle, work);
            let (done, split) = self.step::<L, NEE>(l, light, spheres, p, st, &mut work.results);
            let (done, split) = (done & !idle, split & !idle);
            let rare = split | (done & pending);
            for i in set_bits(rare) {
                if split >> i & 1 == 1 {
                    push(l, p, st, i);
                }
                if done >> i & 1 == 1 {
                    if NEE {
                        flush(st, i, &mut work.results);
                    }
                    // A lane that split or had a branch pending has one to continue with.
                    let popped = pop(l, p, st, i);
                    debug_assert!(popped, "lane {i} had no branch to continue");
                }
                pending = pending & !(1 << i) | u32::from(st.depth_of_stack[i] > 0) << i;
            }
            let fresh = done & !rare;
            if fresh != 0 {
                if NEE {
                    for i in set_bits(fresh) {
                        flush(st, i, &mut work.results);
                    }
                }
                self.refill(l, p, fresh, &mut next, total, &mut samples, &mut idle, work, cams);
                l.store_u(samples, &mut st.sample);
            }
        }
    }

    /// Counts the `live` lanes whose ray starts outside smallpt's box ([`Work::outside`]) or
    /// whose path is past [`DEEP`] ([`Work::deep`]).
    #[cfg(test)]
    #[inline(always)]
    fn count_strays<L: Lanes>(&self, l: L, p: &Paths<L>, live: u32, work: &mut Work) {
        let out = super::intersect::outside_box(l, &self.tables, p.o);
        work.outside += u64::from((out & live).count_ones());
        work.deep += u64::from((l.bits(l.lt(l.splat(DEEP), p.depth)) & live).count_ones());
    }

    /// Starts the next samples in the lanes `fresh`, lowest lane first; lanes left over when the
    /// batch runs out go idle.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn refill<L: Lanes>(
        &self,
        l: L,
        p: &mut Paths<L>,
        fresh: u32,
        next: &mut u32,
        total: u32,
        samples: &mut L::U,
        idle: &mut u32,
        work: &Work,
        cams: &mut CameraRays,
    ) {
        let take = fresh.count_ones().min(total - *next);
        let mut starting = fresh;
        for _ in take..fresh.count_ones() {
            starting &= !(1 << (31 - starting.leading_zeros()));
        }
        if starting != 0 {
            if !(cams.first <= *next && *next + take <= cams.first + L::W as u32) {
                self.camera.rays(l, *next, &work.samples, cams);
            }
            let r = (*next - cams.first) as usize;
            let m = l.mask_of(starting);
            (p.o, p.d) = (expand3(l, m, &cams.o, r, p.o), expand3(l, m, &cams.d, r, p.d));
            p.begin(l, m);
            p.rng = l.expand_u(m, &cams.rng[r..], p.rng);
            *samples = l.expand_u(m, &cams.sample[r..], *samples);
            *next += take;
        }
        let ending = fresh & !starting;
        if ending != 0 {
            *samples = l.select_u(l.mask_of(ending), l.splat_u(IDLE), *samples);
            *idle |= ending;
        }
    }

    /// Puts sample `j` of the batch in lane `i`: its camera ray and random stream, taken from
    /// `cams` (made `W` at a time).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn start<L: Lanes>(
        &self,
        l: L,
        p: &mut Paths<L>,
        st: &mut State,
        i: usize,
        j: u32,
        work: &Work,
        cams: &mut CameraRays,
    ) {
        if !(cams.first..cams.first + L::W as u32).contains(&j) {
            self.camera.rays(l, j, &work.samples, cams);
        }
        let r = (j - cams.first) as usize;
        let m = l.lane(i);
        let col = |a: &[[f32; MAX_W]; 3]| [a[0][r], a[1][r], a[2][r]];
        p.o = sel3(l, m, splat_v(l, col(&cams.o)), p.o);
        p.d = sel3(l, m, splat_v(l, col(&cams.d)), p.d);
        p.begin(l, m);
        p.rng = l.select_u(m, l.splat_u(cams.rng[r]), p.rng);
        st.sample[i] = j;
        st.depth_of_stack[i] = 0;
    }

    /// One segment for every lane: intersect, gather emission, scatter (see [`scatter`] for the
    /// masks returned), and with `NEE` cast the shadow rays of the diffuse hits.
    #[inline(always)]
    fn step<L: Lanes, const NEE: bool>(
        &self,
        l: L,
        light: &Light,
        spheres: &Spheres<L>,
        path: &mut Paths<L>,
        st: &mut State,
        results: &mut [[f32; 3]],
    ) -> (u32, u32) {
        let k = &self.tables;
        let draws = draws(l, &mut path.rng);
        let (t, id) = nearest(l, k, spheres, path.o, path.d);
        let hit = Hit { t, id };
        // L += T·e. Most segments end on a surface that emits nothing (smallpt's light is one
        // sphere), so T·e goes straight to the lane's sample rather than into a per-lane sum.
        let lit_lanes = l.bits(hit.emits(l, k));
        if lit_lanes != 0 {
            let mut lit = path.thr.mul_each(k.any3(l, &k.emission, id));
            if NEE {
                // The sampled light seen through its disk: weighted by `lw` (0 right after a
                // diffuse bounce, whose shadow ray counted it).
                let through = l.eq(l.to_f(id), l.splat(light.slot as f32)) & light.through_disk(l, path.o, path.d);
                lit = lit * l.select(through, path.lw, l.splat(1.0));
            }
            let mut lit_each = [[0.0; MAX_W]; 3];
            store3(l, lit, &mut lit_each);
            for i in set_bits(lit_lanes) {
                // (An idle lane's sample is IDLE, past the end: it adds nothing.)
                if let Some(r) = results.get_mut(st.sample[i] as usize) {
                    (0..3).for_each(|c| r[c] += lit_each[c][i]);
                }
            }
        }
        // Light met through the disk by way of the mirror right after a diffuse bounce is
        // weighted against the points drawn on the mirror (see `mirror.rs`); the weight is
        // worked out here, before `scatter`, so that only it stays live across the step.
        let one = l.splat(1.0);
        let via_mirror = match &self.mirror {
            Some(mirror) if NEE => {
                let via = l.eq(l.to_f(id), l.splat(mirror.slot as f32)) & !hit.miss(l) & l.lt(l.splat(0.0), path.pb);
                if l.bits(via) != 0 {
                    l.select(via, mirror.bounce_weight(l, path.o, path.d, t, path.pb), one)
                } else {
                    one
                }
            }
            _ => one,
        };
        let (done, split, at) = scatter(l, k, path, hit, draws, &mut st.splits);
        if NEE {
            // One pair of numbers for the shadow ray and (swapped) for the point on the mirror:
            // each estimate is unbiased on its own, and it saves two draws per step.
            let uv = (uniform(l, &mut path.rng), uniform(l, &mut path.rng));
            let direct = light.direct(l, k, spheres, at, uv);
            if let Some(direct) = direct {
                store3(l, load3(l, &st.gathered) + direct, &mut st.gathered);
            }
            let zero = l.splat(0.0);
            if let Some(mirror) = &self.mirror {
                let aimed = mirror.aimed(l, light, at, (uv.1, uv.0));
                if let Some(aimed) = aimed {
                    store3(l, load3(l, &st.gathered) + aimed, &mut st.gathered);
                }
                path.pb = l.select(at.diffuse, dot(l, path.d, at.nl) * l.splat(std::f32::consts::FRAC_1_PI), zero);
            }
            path.lw = l.select(at.diffuse, zero, via_mirror);
        }
        (done, split)
    }
}

/// [`Lanes::expand`] of each component from `a[c][r..]`. (A function, not a closure: a closure
/// does not inherit the target features of the function it is inlined into; a first try of
/// AVX2's table-and-permute expand in a closure left its intrinsics as calls, +40 % instructions.)
#[inline(always)]
fn expand3<L: Lanes>(l: L, m: L::M, a: &[[f32; MAX_W]; 3], r: usize, v: V3<L::F>) -> V3<L::F> {
    V3 { x: l.expand(m, &a[0][r..], v.x), y: l.expand(m, &a[1][r..], v.y), z: l.expand(m, &a[2][r..], v.z) }
}

/// Adds what lane `i`'s shadow rays gathered to its sample, and clears it.
#[inline(always)]
fn flush(st: &mut State, i: usize, results: &mut [[f32; 3]]) {
    let r = &mut results[st.sample[i] as usize];
    (0..3).for_each(|c| r[c] += std::mem::take(&mut st.gathered[c][i]));
}

#[inline(always)]
fn push<L: Lanes>(l: L, p: &Paths<L>, st: &mut State, i: usize) {
    let sp = usize::from(st.depth_of_stack[i]);
    let col = |a: &[[f32; MAX_W]; 3]| [a[0][i], a[1][i], a[2][i]];
    let o = [l.get(p.o.x, i), l.get(p.o.y, i), l.get(p.o.z, i)];
    st.stack[i][sp] = Branch { o, d: col(&st.splits.refl), t: col(&st.splits.refl_thr), depth: l.get(p.depth, i) };
    st.depth_of_stack[i] += 1;
}

/// Continues lane `i` with its latest pending branch; false when it has none.
#[inline(always)]
fn pop<L: Lanes>(l: L, p: &mut Paths<L>, st: &mut State, i: usize) -> bool {
    let Some(sp) = st.depth_of_stack[i].checked_sub(1) else { return false };
    st.depth_of_stack[i] = sp;
    let b = st.stack[i][usize::from(sp)];
    let m = l.lane(i);
    p.o = sel3(l, m, splat_v(l, b.o), p.o);
    p.d = sel3(l, m, splat_v(l, b.d), p.d);
    p.thr = sel3(l, m, splat_v(l, b.t), p.thr);
    p.depth = l.select(m, l.splat(b.depth), p.depth);
    p.lw = l.select(m, l.splat(1.0), p.lw);
    p.pb = l.select(m, l.splat(0.0), p.pb);
    true
}
