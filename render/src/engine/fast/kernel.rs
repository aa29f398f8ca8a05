//! The fast engine's estimator, written once over [`Lanes`]: W independent camera samples in W
//! SIMD lanes (ISPC style). Each step traces one segment per lane; a lane whose path ends takes
//! the next sample of the batch, so lanes stay busy. Glass splits at shallow depth push the
//! reflected branch on a two-entry per-lane stack, traced after the refracted one.

use super::simd::Lanes;
use crate::camera::SUBPIXELS;
use crate::scene::{GLASS_IOR, Material, Scene};
use std::ops::{Add, Mul, Neg, Sub};

/// Hits closer than this are ignored, so a bounced ray does not hit its own surface. Larger than
/// classic's 1e-4: f32 hit points are off by up to ~1e-5 at this scene's scale (about 100).
pub(super) const EPS: f32 = 1e-3;
/// "No hit" distance.
const INF: f32 = 1e20;
/// Paths deeper than this continue only by Russian roulette on the surface's largest albedo.
const ROULETTE_DEPTH: f32 = 5.0;
/// At this depth or less, glass traces both the reflected and the refracted ray.
const SPLIT_DEPTH: f32 = 2.0;
/// Glass splits happen at depths 1 and 2 only, so a lane holds at most two pending branches.
const STACK: usize = 2;
/// Most spheres the lane tables hold.
pub const MAX_SPHERES: usize = 16;
/// Widest lane count.
const MAX_W: usize = 16;
/// Lane holds no sample.
const IDLE: u32 = u32::MAX;

/// A 3-vector of lanes (or of plain f32 for the scalar camera code).
#[derive(Clone, Copy)]
struct V3<F> {
    x: F,
    y: F,
    z: F,
}

impl<F: Copy + Add<Output = F>> Add for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn add(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x + b.x, y: self.y + b.y, z: self.z + b.z }
    }
}
impl<F: Copy + Sub<Output = F>> Sub for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn sub(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x - b.x, y: self.y - b.y, z: self.z - b.z }
    }
}
impl<F: Copy + Mul<Output = F>> Mul<F> for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn mul(self, s: F) -> V3<F> {
        V3 { x: self.x * s, y: self.y * s, z: self.z * s }
    }
}
impl<F: Copy + Neg<Output = F>> Neg for V3<F> {
    type Output = V3<F>;
    #[inline(always)]
    fn neg(self) -> V3<F> {
        V3 { x: -self.x, y: -self.y, z: -self.z }
    }
}
impl<F: Copy + Add<Output = F> + Mul<Output = F>> V3<F> {
    /// Component `axis` (0 x, 1 y, 2 z).
    #[inline(always)]
    fn pick(self, axis: u8) -> F {
        match axis {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }
    #[inline(always)]
    fn mul_each(self, b: V3<F>) -> V3<F> {
        V3 { x: self.x * b.x, y: self.y * b.y, z: self.z * b.z }
    }
}

/// A pending glass branch: origin, direction, throughput, depth.
#[derive(Clone, Copy, Default)]
struct Branch {
    o: [f32; 3],
    d: [f32; 3],
    t: [f32; 3],
    depth: f32,
}

/// Camera rays made ahead, `W` at a time in lanes, for samples `first ..`.
struct CameraRays {
    first: u32,
    o: [[f32; MAX_W]; 3],
    d: [[f32; MAX_W]; 3],
    rng: [u32; MAX_W],
}

/// Per-lane path state, kept in registers from step to step. A lane that starts a path is
/// blended in: written lane by lane to memory, the state could not be read back as vectors
/// until the narrow stores had retired (no store-to-load forwarding), a stall on every step.
#[derive(Clone, Copy)]
struct Paths<L: Lanes> {
    o: V3<L::F>,
    d: V3<L::F>,
    /// Throughput: the product of albedos and branch weights so far.
    thr: V3<L::F>,
    depth: L::F,
    rng: L::U,
}

/// Per-lane bookkeeping in memory.
struct State {
    /// Reflected direction and throughput of a glass split made this step.
    refl: [[f32; MAX_W]; 3],
    refl_thr: [[f32; MAX_W]; 3],
    sample: [u32; MAX_W],
    stack: [[Branch; STACK]; MAX_W],
    depth_of_stack: [u8; MAX_W],
    /// Segments that started outside smallpt's box.
    outside: u64,
}

/// One batch: consecutive pixels of one row, and per sample the radiance it gathered.
pub(super) struct Work {
    /// smallpt's y (0 is the bottom row).
    pub y: u32,
    /// First pixel's x.
    pub x0: u32,
    /// Pixels in the batch.
    pub pixels: u32,
    /// Radiance per sample, indexed `(pixel*4 + subpixel)*samples + k`.
    pub results: Vec<[f32; 3]>,
    /// Segments traced.
    pub segments: u64,
    /// Segments that started outside smallpt's box: rays that leaked through a wall.
    pub outside: u64,
}

/// The scene in lane-friendly tables and the camera in f32: built once per render.
pub(super) struct Kernel {
    n: usize,
    /// Per sphere: an anchor point on the surface and `w` = centre − anchor (|w| = radius).
    anchor: [[f32; MAX_SPHERES]; 3],
    /// The axis `w` lies along, and its component there (± radius).
    axis: [u8; MAX_SPHERES],
    /// Sphere indices in test order: the six walls first when the scene is smallpt's closed box
    /// (see [`walls`](super::walls)), then the others grouped as big x, y, z, small x, y, z (see
    /// [`SMALL_RADIUS`]); where each group ends.
    order: [u8; MAX_SPHERES],
    ends: [usize; 6],
    /// Whether `order` starts with the walls, as (low, high) pairs along x, y, z.
    walls: bool,
    /// Per axis: lanes moving more nearly parallel to the walls than this test both of a pair.
    graze: [f32; 3],
    /// The box's bounds, when `walls`.
    box_lo: [f32; 3],
    box_hi: [f32; 3],
    w_axis: [f32; MAX_SPHERES],
    center: [[f32; MAX_SPHERES]; 3],
    /// 1 / radius.
    inv_radius: [f32; MAX_SPHERES],
    emission: [[f32; MAX_SPHERES]; 3],
    /// Per sphere, its index in the tables looked up at a hit (`center` to `kind`): the spheres
    /// that reflect light first, then the black ones (smallpt's front wall and light). A path
    /// ends at a black sphere, so with at most 8 of the others (`narrow`) AVX2 looks each table
    /// up with one permute.
    slot: [u8; MAX_SPHERES],
    /// Spheres that are not black.
    live: usize,
    narrow: bool,
    /// 1 where the sphere emits, else 0.
    emits: [f32; MAX_SPHERES],
    color: [[f32; MAX_SPHERES]; 3],
    /// 0 diffuse, 1 mirror, 2 glass.
    kind: [f32; MAX_SPHERES],
    cam_o: [f32; 3],
    cam_d: [f32; 3],
    cam_cx: [f32; 3],
    cam_cy: [f32; 3],
    near: f32,
    inv_width: f32,
    inv_height: f32,
    /// Samples per subpixel.
    pub samples: u32,
    seed: u32,
}

const DIFFUSE: f32 = 0.0;
const MIRROR: f32 = 1.0;
const GLASS: f32 = 2.0;

impl Kernel {
    /// Tables for `scene` (at most [`MAX_SPHERES`] spheres) rendered `width`×`height`.
    pub fn new(scene: &Scene, width: u32, height: u32, samples: u32, seed: u32) -> Kernel {
        Kernel::build(scene, width, height, samples, seed, true)
    }

    /// [`Kernel::new`], or with `use_walls` false every sphere tested on every step (what a scene
    /// that is not a closed box gets).
    pub(super) fn build(scene: &Scene, width: u32, height: u32, samples: u32, seed: u32, use_walls: bool) -> Kernel {
        // `Fast::with_path` refuses larger scenes with an error before they get here.
        assert!(scene.spheres.len() <= MAX_SPHERES, "the fast engine holds at most {MAX_SPHERES} spheres");
        let z = [[0.0; MAX_SPHERES]; 3];
        let mut k = Kernel {
            n: scene.spheres.len(),
            anchor: z,
            axis: [0; MAX_SPHERES],
            order: [0; MAX_SPHERES],
            ends: [0; 6],
            walls: false,
            graze: [0.0; 3],
            box_lo: [0.0; 3],
            box_hi: [0.0; 3],
            w_axis: [0.0; MAX_SPHERES],
            center: z,
            inv_radius: [0.0; MAX_SPHERES],
            emission: z,
            slot: [0; MAX_SPHERES],
            live: 0,
            narrow: false,
            emits: [0.0; MAX_SPHERES],
            color: z,
            kind: [DIFFUSE; MAX_SPHERES],
            cam_o: [0.0; 3],
            cam_d: [0.0; 3],
            cam_cx: [0.0; 3],
            cam_cy: [0.0; 3],
            near: 0.0,
            inv_width: 1.0 / width as f32,
            inv_height: 1.0 / height as f32,
            samples,
            seed,
        };
        let black = |s: &crate::scene::Sphere| s.color == crate::vec3::Vec3::ZERO;
        let mut by_slot: Vec<usize> = (0..k.n).filter(|&i| !black(&scene.spheres[i])).collect();
        k.live = by_slot.len();
        k.narrow = k.live <= 8;
        by_slot.extend((0..k.n).filter(|&i| black(&scene.spheres[i])));
        for (j, &i) in by_slot.iter().enumerate() {
            k.slot[i] = j as u8;
        }
        let eye = scene.camera.origin;
        for (i, s) in scene.spheres.iter().enumerate() {
            // The anchor is the point of the sphere where its surface faces the camera along the
            // axis of largest offset. For smallpt's walls that is the wall's plane point inside the
            // box (e.g. x = 1 for the left wall) and w = (±1e5, 0, 0) — both exact in f32 — so the
            // intersection below never forms 1e10-sized terms that cancel.
            let c = [s.center.x, s.center.y, s.center.z];
            let off = [c[0] - eye.x, c[1] - eye.y, c[2] - eye.z];
            let axis = (0..3).max_by(|&a, &b| off[a].abs().total_cmp(&off[b].abs())).unwrap_or(0);
            let mut w = [0.0f64; 3];
            w[axis] = s.radius * off[axis].signum();
            (k.axis[i], k.w_axis[i]) = (axis as u8, w[axis] as f32);
            let h = usize::from(k.slot[i]);
            for j in 0..3 {
                k.anchor[j][i] = (c[j] - w[j]) as f32;
                k.center[j][h] = c[j] as f32;
            }
            k.inv_radius[h] = (1.0 / s.radius) as f32;
            let (e, f) = (s.emission, s.color);
            [k.emission[0][h], k.emission[1][h], k.emission[2][h]] = [e.x as f32, e.y as f32, e.z as f32];
            k.emits[h] = if e == crate::vec3::Vec3::ZERO { 0.0 } else { 1.0 };
            [k.color[0][h], k.color[1][h], k.color[2][h]] = [f.x as f32, f.y as f32, f.z as f32];
            k.kind[h] = match s.material {
                Material::Diffuse => DIFFUSE,
                Material::Mirror => MIRROR,
                Material::Glass => GLASS,
            };
        }
        let f = scene.camera.frame(width, height);
        // Each wall's w must lie along its pair's axis, and the two anchors of a pair may differ
        // only along it (true for smallpt; `ahead` relies on both).
        let walls = super::walls::find(scene, &super::walls::camera_starts(&f)).filter(|w| {
            use_walls
                && (0..3).all(|a| {
                    let [lo, hi] = w.pairs[a];
                    [lo, hi].iter().all(|&i| usize::from(k.axis[i]) == a)
                        && (0..3).all(|b| b == a || k.anchor[b][lo] == k.anchor[b][hi])
                })
        });
        let mut order: Vec<u8> = Vec::new();
        if let Some(w) = &walls {
            order.extend(w.pairs.iter().flatten().map(|&i| i as u8));
            (k.walls, k.graze, k.box_lo, k.box_hi) = (true, w.graze, w.lo, w.hi);
        }
        // The rest by size and axis, and last sphere first within a group as smallpt tests them
        // (only exact ties could tell the difference).
        let mut rest: Vec<u8> = (0..k.n as u8).rev().filter(|i| !order.contains(i)).collect();
        let group = |i: u8| {
            usize::from(k.w_axis[usize::from(i)].abs() <= SMALL_RADIUS) * 3 + usize::from(k.axis[usize::from(i)])
        };
        rest.sort_by_key(|&i| group(i));
        k.ends = std::array::from_fn(|g| order.len() + rest.iter().filter(|&&i| group(i) <= g).count());
        order.extend(rest);
        k.order[..k.n].copy_from_slice(&order);
        let v = |v: crate::vec3::Vec3| [v.x as f32, v.y as f32, v.z as f32];
        (k.cam_o, k.cam_d, k.cam_cx, k.cam_cy, k.near) = (v(f.origin), v(f.dir), v(f.cx), v(f.cy), f.near as f32);
        k
    }

    /// Each lane's hit sphere's entry of a table indexed by slot (valid for spheres that are not
    /// black).
    #[inline(always)]
    fn hit<L: Lanes>(&self, l: L, t: &[f32; MAX_SPHERES], id: L::U) -> L::F {
        if self.narrow { l.lookup8(t, id) } else { l.lookup(t, id) }
    }

    #[inline(always)]
    fn hit3<L: Lanes>(&self, l: L, t: &[[f32; MAX_SPHERES]; 3], id: L::U) -> V3<L::F> {
        V3 { x: self.hit(l, &t[0], id), y: self.hit(l, &t[1], id), z: self.hit(l, &t[2], id) }
    }

    /// Whether steps test one wall per axis (see [`walls`](super::walls)).
    #[cfg(test)]
    pub(super) fn uses_walls(&self) -> bool {
        self.walls
    }

    /// Looks hit tables up over all 16 entries even when the spheres that are not black fit in 8.
    #[cfg(test)]
    pub(super) fn wide_lookups(mut self) -> Kernel {
        self.narrow = false;
        self
    }

    /// Traces every sample of `work`, `L::W` at a time.
    #[inline(always)]
    pub(super) fn run<L: Lanes>(&self, l: L, work: &mut Work) {
        let total = work.pixels * 4 * self.samples;
        work.results.clear();
        work.results.resize(total as usize, [0.0; 3]);
        let z = [[0.0; MAX_W]; 3];
        let zero = splat_v(l, [0.0; 3]);
        let mut p = Paths { o: zero, d: zero, thr: zero, depth: l.splat(0.0), rng: l.splat_u(0) };
        let mut st = State {
            refl: z,
            refl_thr: z,
            sample: [IDLE; MAX_W],
            stack: [[Branch::default(); STACK]; MAX_W],
            depth_of_stack: [0; MAX_W],
            outside: 0,
        };
        let mut cams = CameraRays { first: u32::MAX - MAX_W as u32, o: z, d: z, rng: [0; MAX_W] };
        let spheres: [SphereLanes<L>; MAX_SPHERES] = std::array::from_fn(|j| {
            let k = usize::from(self.order[j]);
            SphereLanes {
                anchor: splat3(l, &self.anchor, k),
                w: l.splat(self.w_axis[k]),
                w2: l.splat(2.0 * self.w_axis[k]),
                id: l.splat_u(u32::from(self.slot[k])),
            }
        });
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
            let (done, split) = self.step(l, &spheres, &mut p, &mut st, &mut work.results);
            for i in set_bits(done | split) {
                if st.sample[i] == IDLE {
                    continue;
                }
                if split >> i & 1 == 1 {
                    push(l, &p, &mut st, i);
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
        work.outside += st.outside;
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
            self.camera_rays(l, j, work, cams);
        }
        let r = (j - cams.first) as usize;
        let m = l.lane(i);
        let col = |a: &[[f32; MAX_W]; 3]| [a[0][r], a[1][r], a[2][r]];
        p.o = sel3(l, m, splat_v(l, col(&cams.o)), p.o);
        p.d = sel3(l, m, splat_v(l, col(&cams.d)), p.d);
        p.thr = sel3(l, m, splat_v(l, [1.0; 3]), p.thr);
        p.depth = l.select(m, l.splat(0.0), p.depth);
        p.rng = l.select_u(m, l.splat_u(cams.rng[r]), p.rng);
        st.sample[i] = j;
        st.depth_of_stack[i] = 0;
    }

    /// Camera rays (origin, direction) and random streams of samples `j0 .. j0 + W`, one per
    /// lane. Sample j of the batch is pixel j / 4n, subpixel j / n mod 4, index j mod n (n samples
    /// per subpixel); its stream is keyed by (seed, y, x, index·4 + subpixel).
    #[inline(always)]
    fn camera_rays<L: Lanes>(&self, l: L, j0: u32, work: &Work, cams: &mut CameraRays) {
        let n = self.samples;
        let (mut p, mut sub, mut k) = (j0 / (4 * n), j0 / n % 4, j0 % n);
        let (mut px, mut key, mut sx, mut sy) = ([0u32; MAX_W], [0u32; MAX_W], [0f32; MAX_W], [0f32; MAX_W]);
        for i in 0..L::W {
            (px[i], key[i]) = (work.x0 + p, k << 2 | sub);
            (sx[i], sy[i]) = (SUBPIXELS[sub as usize].0 as f32, SUBPIXELS[sub as usize].1 as f32);
            k += 1;
            if k == n {
                (k, sub) = (0, sub + 1);
                if sub == 4 {
                    (sub, p) = (0, p + 1);
                }
            }
        }
        let row = l.splat_u(hash32(hash32(self.seed) ^ work.y));
        let mut rng = l.seed(l.seed(row, l.load_u(&px)), l.load_u(&key));
        let dx = tent(l, l.splat(2.0) * l.uniform(&mut rng));
        let dy = tent(l, l.splat(2.0) * l.uniform(&mut rng));
        let half = l.splat(0.5);
        let fx = ((l.load(&sx) + half + dx) * half + l.to_f(l.load_u(&px))) * l.splat(self.inv_width) - half;
        let fy = ((l.load(&sy) + half + dy) * half + l.splat(work.y as f32)) * l.splat(self.inv_height) - half;
        let d = splat_v(l, self.cam_cx) * fx + splat_v(l, self.cam_cy) * fy + splat_v(l, self.cam_d);
        let d = d * (l.splat(1.0) / l.sqrt(dot(l, d, d)));
        store3(l, fma3(l, d, l.splat(self.near), splat_v(l, self.cam_o)), &mut cams.o);
        store3(l, d, &mut cams.d);
        l.store_u(rng, &mut cams.rng);
        cams.first = j0;
    }

    /// One segment for every lane: intersect, gather emission, roulette, scatter. Returns bit
    /// masks of lanes whose path ended (missed, lost the roulette, or can add nothing more) and
    /// of lanes that split at glass (both bits set: the refracted branch ended, the reflected
    /// one is pending).
    #[inline(always)]
    fn step<L: Lanes>(
        &self,
        l: L,
        spheres: &[SphereLanes<L>; MAX_SPHERES],
        path: &mut Paths<L>,
        st: &mut State,
        results: &mut [[f32; 3]],
    ) -> (u32, u32) {
        let w = L::W;
        // Helpers as plain fns, not closures: closures would not inherit the kernel's target features.
        let (o, d) = (path.o, path.d);

        // Nearest hit. In smallpt's box, one wall per axis: the one ahead of the lane, unless some
        // lane moves nearly parallel to a wall (see `walls`); then every wall. The other spheres
        // by axis (the axis is a constant in each loop).
        let mut t = l.splat(INF);
        let mut id = l.splat_u(0);
        let first = if self.walls {
            // Lanes near parallel to a wall along a, or outside the box along a by more than EPS
            // (a hit point on a wall rounds to either side of it).
            let check = check::<L, 0>(l, self, o, d) | check::<L, 1>(l, self, o, d) | check::<L, 2>(l, self, o, d);
            if l.bits(check) == 0 {
                ahead::<L, 0>(l, &spheres[0], &spheres[1], o, d, &mut t, &mut id);
                ahead::<L, 1>(l, &spheres[2], &spheres[3], o, d, &mut t, &mut id);
                ahead::<L, 2>(l, &spheres[4], &spheres[5], o, d, &mut t, &mut id);
            } else {
                // Count the rays that got out of the box (a leak; the tests require none).
                let out = outside::<L, 0>(l, self, o) | outside::<L, 1>(l, self, o) | outside::<L, 2>(l, self, o);
                st.outside += set_bits(l.bits(out)).filter(|&i| st.sample[i] != IDLE).count() as u64;
                for (a, pair) in spheres[..6].chunks(2).enumerate() {
                    for s in pair {
                        match a {
                            0 => nearer::<L, 0, true, true>(l, s, o, d, &mut t, &mut id),
                            1 => nearer::<L, 1, true, true>(l, s, o, d, &mut t, &mut id),
                            _ => nearer::<L, 2, true, true>(l, s, o, d, &mut t, &mut id),
                        }
                    }
                }
            }
            6
        } else {
            0
        };
        let e = self.ends;
        for s in &spheres[first..e[0]] {
            nearer::<L, 0, true, false>(l, s, o, d, &mut t, &mut id);
        }
        for s in &spheres[e[0]..e[1]] {
            nearer::<L, 1, true, false>(l, s, o, d, &mut t, &mut id);
        }
        for s in &spheres[e[1]..e[2]] {
            nearer::<L, 2, true, false>(l, s, o, d, &mut t, &mut id);
        }
        for s in &spheres[e[2]..e[3]] {
            nearer::<L, 0, false, false>(l, s, o, d, &mut t, &mut id);
        }
        for s in &spheres[e[3]..e[4]] {
            nearer::<L, 1, false, false>(l, s, o, d, &mut t, &mut id);
        }
        for s in &spheres[e[4]..e[5]] {
            nearer::<L, 2, false, false>(l, s, o, d, &mut t, &mut id);
        }
        let miss = !l.lt(t, l.splat(INF));

        let x = fma3(l, d, t, o);
        // n = (x − c)/|x − c| without a square root or a divide on the way to the next segment:
        // n₀ = (x − c)/r is unit to ~1e-6 (x is on the sphere to rounding) and one Newton step,
        // n₀·(3 − |n₀|²)/2, makes it unit to rounding. (n₀ alone is not enough: inside the glass
        // ball a short normal shrinks each reflected direction, and the error feeds on itself.)
        let n = (x - self.hit3(l, &self.center, id)) * self.hit(l, &self.inv_radius, id);
        let n = n * l.fma(l.splat(-0.5), dot(l, n, n), l.splat(1.5));
        let dn = dot(l, n, d);
        let into = l.lt(dn, l.splat(0.0));
        let nl = sel3(l, into, n, -n);
        let depth = path.depth + l.splat(1.0);
        (path.o, path.depth) = (x, depth);

        // L += T·e, then roulette past ROULETTE_DEPTH on the largest albedo p: survive with
        // probability p, weight f/p.
        let mut thr = path.thr;
        // Most segments end on a surface that emits nothing (smallpt's light is one sphere), so
        // T·e goes straight to the lane's sample rather than into a per-lane sum.
        let emits = l.lt(l.splat(0.0), l.lookup(&self.emits, id)) & !miss;
        let lit_lanes = l.bits(emits);
        if lit_lanes != 0 {
            let lit = thr.mul_each(lookup3(l, &self.emission, id));
            let mut lit_each = [[0.0; MAX_W]; 3];
            store3(l, lit, &mut lit_each);
            for i in set_bits(lit_lanes) {
                // (An idle lane's sample is IDLE, past the end: it adds nothing.)
                if let Some(r) = results.get_mut(st.sample[i] as usize) {
                    (0..3).for_each(|c| r[c] += lit_each[c][i]);
                }
            }
        }
        let rng = &mut path.rng;
        let (u0, u1, u2) = (l.uniform(rng), l.uniform(rng), l.uniform(rng));
        let f = self.hit3(l, &self.color, id);
        let p = l.max(f.x, l.max(f.y, f.z));
        let roulette = l.lt(l.splat(ROULETTE_DEPTH), depth);
        let dies = roulette & !l.lt(u0, p);
        thr = thr.mul_each(f) * l.select(roulette, l.splat(1.0) / p, l.splat(1.0));

        // Diffuse: cosine-weighted around nl, φ = 2π·u1, sin θ = √u2.
        let (cos_phi, sin_phi) = cos_sin_2pi(l, u1);
        let r2s = l.sqrt(u2);
        let (tu, tv) = orthonormal_basis(l, nl);
        let diffuse_dir = fma3(l, tu, cos_phi * r2s, fma3(l, tv, sin_phi * r2s, nl * l.sqrt(l.splat(1.0) - u2)));
        // Mirror.
        let refl = fma3(l, n, l.splat(-2.0) * dn, d);
        let kind = self.hit(l, &self.kind, id);
        // A lane that hit a black sphere ends this step (below); its table entries are not its
        // sphere's (see `slot`), and it must not split.
        let black = l.lt(l.splat(self.live as f32 - 0.5), l.to_f(id)) & !miss;
        let glass = l.lt(l.splat(MIRROR), kind) & !miss & !black;
        let mirror = l.lt(l.splat(DIFFUSE), kind) & !glass;
        let mut new_d = sel3(l, mirror, refl, diffuse_dir);
        let mut split = l.lt(l.splat(0.0), l.splat(0.0));
        // Glass (Snell with Schlick's Fresnel; total internal reflection mirrors) only when a lane
        // hit glass: most steps have none.
        if l.bits(glass) != 0 {
            let (nc, nt) = (1.0, GLASS_IOR as f32);
            let nnt = l.select(into, l.splat(nc / nt), l.splat(nt / nc));
            let ddn = l.select(into, dn, -dn); // d·nl
            let cos2t = l.splat(1.0) - nnt * nnt * (l.splat(1.0) - ddn * ddn);
            let tir = l.lt(cos2t, l.splat(0.0));
            // Unit to rounding (|tdir|² = nnt²(1 − ddn²) + cos2t = 1), so unlike smallpt we do
            // not normalise it: the error is a few ulps and the next diffuse bounce resets it.
            let tdir = d * nnt - nl * l.fma(ddn, nnt, l.sqrt(l.max(cos2t, l.splat(0.0))));
            let r0 = (nt - nc) * (nt - nc) / ((nt + nc) * (nt + nc));
            let cc = l.splat(1.0) - l.select(into, -ddn, dot(l, tdir, n));
            let cc2 = cc * cc;
            let re = l.fma(l.splat(1.0 - r0), cc2 * cc2 * cc, l.splat(r0));
            let tr = l.splat(1.0) - re;
            let pr = l.fma(l.splat(0.5), re, l.splat(0.25));
            split = glass & !tir & !l.lt(l.splat(SPLIT_DEPTH), depth);
            let pick_refl = tir | (!split & l.lt(u1, pr));
            let glass_w = l.select(
                tir,
                l.splat(1.0),
                l.select(split, tr, l.select(pick_refl, re / pr, tr / (l.splat(1.0) - pr))),
            );
            new_d = sel3(l, glass, sel3(l, pick_refl, refl, tdir), new_d);
            if l.bits(split) != 0 {
                store3(l, refl, &mut st.refl);
                store3(l, thr * re, &mut st.refl_thr);
            }
            thr = sel3(l, glass, thr * glass_w, thr);
        }
        (path.d, path.thr) = (new_d, thr);
        // A path that hit a black sphere (smallpt's front wall or light: albedo 0) has throughput
        // 0 and can add only 0·L to its sample from here on: smallpt traces it on until roulette
        // ends it, about a fifth of all its segments; we end it.
        let lanes = if w >= 32 { u32::MAX } else { (1u32 << w) - 1 };
        (l.bits(miss | dies | black) & lanes, l.bits(split) & lanes)
    }
}

/// Up to this radius a sphere's roots are taken as b ∓ √(b² − C) (see [`nearer`]): the
/// subtraction loses at most an ulp of |b| ≤ r + (the ray's distance from the sphere), about
/// 6e-5 for smallpt's light (r = 600, within 250 of any ray), far below EPS. Larger spheres (the
/// 1e5 walls: |b| ~ 1e5, where an ulp is 8e-3) take the divide.
const SMALL_RADIUS: f32 = 1e3;

/// One sphere's constants in every lane.
struct SphereLanes<L: Lanes> {
    anchor: V3<L::F>,
    /// The axis component of w (± radius), and twice it.
    w: L::F,
    w2: L::F,
    id: L::U,
}

/// Moves `t`, `id` to the sphere `s` in lanes where it is hit nearer, with `s.w` along axis `A`.
///
/// With v = anchor − o and c − o = w + v:
///   b = (c − o)·d = w·d + v·d,  C = |c − o|² − r² = 2 w·v + |v|²  (no r² term: exact for huge
///   spheres), and t = b ∓ √(b² − C): for `BIG` spheres as q = b + sign(b)√(b² − C) and C/q (no
///   cancellation), for small ones directly (no divide on the way to the next segment).
/// A negative discriminant makes √ NaN, which fails every comparison: a miss, with no test.
///
/// A `WALL` of smallpt's box (which holds every ray) is only ever left: its hit is the far root,
/// with no EPS, and at once for a ray already beyond it. Its near root is an f32 artifact (a ray
/// that starts a rounding error outside the wall it just left, re-entering it), and a hit on the
/// wall ahead closer than EPS is real (a ray leaving the floor or a ball within EPS of a wall):
/// taking the one or skipping the other lets rays out of the box through the wall.
#[inline(always)]
fn nearer<L: Lanes, const A: u8, const BIG: bool, const WALL: bool>(
    l: L,
    s: &SphereLanes<L>,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    let v = s.anchor - o;
    let b = l.fma(s.w, d.pick(A), dot(l, v, d));
    let c = l.fma(s.w2, v.pick(A), dot(l, v, v));
    let root = l.sqrt(l.fma(b, b, -c));
    let (near, far) = if BIG {
        let q = b + l.with_sign_of(root, b);
        let t0 = c / q;
        (l.min(t0, q), l.max(t0, q))
    } else {
        (b - root, b + root)
    };
    let (tk, hit) = if WALL {
        // Both roots negative: the ray starts beyond the wall and moves out (rounding put a hit
        // point where two walls meet a hair outside one of them); it meets the wall where it is.
        let zero = l.splat(0.0);
        let tk = l.select(l.lt(far, zero), zero, far);
        (tk, l.lt(tk, *t))
    } else {
        let eps = l.splat(EPS);
        let tk = l.select(l.lt(eps, near), near, far);
        (tk, l.lt(eps, tk) & l.lt(tk, *t))
    };
    *t = l.select(hit, tk, *t);
    *id = l.select_u(hit, s.id, *id);
}

/// Lanes that must test both walls of the pair along `A`: moving within `graze` of parallel to
/// them, or outside the box along `A`.
#[inline(always)]
fn check<L: Lanes, const A: u8>(l: L, k: &Kernel, o: V3<L::F>, d: V3<L::F>) -> L::M {
    l.lt(l.abs(d.pick(A)), l.splat(k.graze[usize::from(A)])) | outside::<L, A>(l, k, o)
}

/// Lanes whose origin is outside the box along `A` by more than EPS (a hit point on a wall rounds
/// to either side of it).
#[inline(always)]
fn outside<L: Lanes, const A: u8>(l: L, k: &Kernel, o: V3<L::F>) -> L::M {
    let a = usize::from(A);
    let (lo, hi) = (l.splat(k.box_lo[a] - EPS), l.splat(k.box_hi[a] + EPS));
    l.lt(o.pick(A), lo) | l.lt(hi, o.pick(A))
}

/// [`nearer`] for the wall of a facing pair ahead of each lane along axis `A`: `high` where the
/// lane moves toward +A, `low` where it moves toward −A.
#[inline(always)]
fn ahead<L: Lanes, const A: u8>(
    l: L,
    low: &SphereLanes<L>,
    high: &SphereLanes<L>,
    o: V3<L::F>,
    d: V3<L::F>,
    t: &mut L::F,
    id: &mut L::U,
) {
    let up = l.lt(l.splat(0.0), d.pick(A));
    // The pair's anchors differ only along A (`Kernel::build` checks): one blend, not three.
    let mut anchor = high.anchor;
    let along = l.select(up, high.anchor.pick(A), low.anchor.pick(A));
    match A {
        0 => anchor.x = along,
        1 => anchor.y = along,
        _ => anchor.z = along,
    }
    let s = SphereLanes {
        anchor,
        w: l.select(up, high.w, low.w),
        w2: l.select(up, high.w2, low.w2),
        id: l.select_u(up, high.id, low.id),
    };
    nearer::<L, A, true, true>(l, &s, o, d, t, id);
}

/// The indices of the set bits of `bits`, lowest first (lanes of a [`Lanes::bits`] mask).
#[inline(always)]
fn set_bits(mut bits: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = bits.trailing_zeros() as usize;
        bits &= bits.wrapping_sub(1);
        (i < 32).then_some(i)
    })
}

/// a·s + b per component, fused.
#[inline(always)]
fn fma3<L: Lanes>(l: L, a: V3<L::F>, s: L::F, b: V3<L::F>) -> V3<L::F> {
    V3 { x: l.fma(a.x, s, b.x), y: l.fma(a.y, s, b.y), z: l.fma(a.z, s, b.z) }
}

/// a·b with fused multiply-adds.
#[inline(always)]
fn dot<L: Lanes>(l: L, a: V3<L::F>, b: V3<L::F>) -> L::F {
    l.fma(a.x, b.x, l.fma(a.y, b.y, a.z * b.z))
}

#[inline(always)]
fn store3<L: Lanes>(l: L, v: V3<L::F>, a: &mut [[f32; MAX_W]; 3]) {
    l.store(v.x, &mut a[0]);
    l.store(v.y, &mut a[1]);
    l.store(v.z, &mut a[2]);
}

/// Sphere `k`'s entry of a table, in every lane.
#[inline(always)]
fn splat3<L: Lanes>(l: L, t: &[[f32; MAX_SPHERES]; 3], k: usize) -> V3<L::F> {
    V3 { x: l.splat(t[0][k]), y: l.splat(t[1][k]), z: l.splat(t[2][k]) }
}

/// `v` in every lane.
#[inline(always)]
fn splat_v<L: Lanes>(l: L, v: [f32; 3]) -> V3<L::F> {
    V3 { x: l.splat(v[0]), y: l.splat(v[1]), z: l.splat(v[2]) }
}

/// Each lane's sphere's entry of a table.
#[inline(always)]
fn lookup3<L: Lanes>(l: L, t: &[[f32; MAX_SPHERES]; 3], id: L::U) -> V3<L::F> {
    V3 { x: l.lookup(&t[0], id), y: l.lookup(&t[1], id), z: l.lookup(&t[2], id) }
}

/// m ? a : b per component.
#[inline(always)]
fn sel3<L: Lanes>(l: L, m: L::M, a: V3<L::F>, b: V3<L::F>) -> V3<L::F> {
    V3 { x: l.select(m, a.x, b.x), y: l.select(m, a.y, b.y), z: l.select(m, a.z, b.z) }
}

/// (cos 2πu, sin 2πu) for u in [0, 1). With h = π(u − ½) in [−π/2, π/2): s = sin h by its
/// Taylor series (error < 1e-7), cos 2πu = 2s² − 1 and sin 2πu = −2s·√(1 − s²). (A second
/// polynomial for cos h in place of the square root measured no faster.)
#[inline(always)]
fn cos_sin_2pi<L: Lanes>(l: L, u: L::F) -> (L::F, L::F) {
    let h = (u - l.splat(0.5)) * l.splat(std::f32::consts::PI);
    let h2 = h * h;
    let mut p = l.splat(-1.0 / 39_916_800.0);
    for c in [1.0 / 362_880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0, 1.0] {
        p = l.fma(p, h2, l.splat(c));
    }
    let sin_h = p * h;
    let cos_h = l.sqrt(l.max(l.splat(1.0) - sin_h * sin_h, l.splat(0.0)));
    (l.fma(l.splat(2.0) * sin_h, sin_h, l.splat(-1.0)), -(l.splat(2.0) * sin_h * cos_h))
}

/// Two unit vectors completing unit `n` to an orthonormal basis (Duff et al. 2017, branch-free).
/// Any basis gives the same cosine distribution; this one needs no normalisation.
#[inline(always)]
fn orthonormal_basis<L: Lanes>(l: L, n: V3<L::F>) -> (V3<L::F>, V3<L::F>) {
    let one = l.splat(1.0);
    let sign = l.copysign(one, n.z);
    let a = -(one / (sign + n.z));
    let b = n.x * n.y * a;
    let u = V3 { x: l.fma(sign * n.x * n.x, a, one), y: sign * b, z: -(sign * n.x) };
    let v = V3 { x: b, y: l.fma(n.y * n.y, a, sign), z: -n.y };
    (u, v)
}

#[inline(always)]
fn push<L: Lanes>(l: L, p: &Paths<L>, st: &mut State, i: usize) {
    let sp = usize::from(st.depth_of_stack[i]);
    let col = |a: &[[f32; MAX_W]; 3]| [a[0][i], a[1][i], a[2][i]];
    let o = [l.get(p.o.x, i), l.get(p.o.y, i), l.get(p.o.z, i)];
    st.stack[i][sp] = Branch { o, d: col(&st.refl), t: col(&st.refl_thr), depth: l.get(p.depth, i) };
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
    true
}

/// smallpt's tent filter in f32: `r` in [0, 2) to an offset in [-1, 1), without a branch:
/// with u = r − 1, sign(u)·(1 − √(1 − |u|)) is √r − 1 below 1 and 1 − √(2 − r) above.
#[inline(always)]
fn tent<L: Lanes>(l: L, r: L::F) -> L::F {
    let one = l.splat(1.0);
    let u = r - one;
    l.copysign(one - l.sqrt(one - l.copysign(u, one)), u)
}

/// One xorshift32 step and the top 24 bits of the new state as a float in [0, 1).
#[inline(always)]
pub(super) fn xorshift(s: &mut u32) -> f32 {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    (*s >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A 32-bit integer hash with full avalanche (Wellons' "lowbias32"); streams are seeded by
/// chaining it over (seed, y, x, index·4 + subpixel), so a sample's stream depends on its
/// position only. 32-bit so the lanes can compute it (SIMD has no 64-bit multiply before AVX-512).
pub(super) fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}
