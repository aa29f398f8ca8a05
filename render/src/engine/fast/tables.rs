//! The scene as lane tables: per sphere its geometry in the form the intersection wants, and per
//! hit its shading data, indexed so one permute looks an entry up in every lane. Built once per
//! render. Materials are encoded here and nowhere else ([`Surface`]).

use super::lanes::Lanes;
use super::math::V3;
use super::walls;
use crate::scene::{CameraFrame, Material, Scene, Sphere};
use crate::vec3::Vec3;

/// Most spheres the lane tables hold (one AVX-512 permute looks up 16 entries).
pub const MAX_SPHERES: usize = 16;

/// Up to this radius a sphere's roots are taken as b ∓ √(b² − C) (see `intersect::nearer`): the
/// subtraction loses at most an ulp of |b| ≤ r + (the ray's distance from the sphere), about
/// 6e-5 for smallpt's light (r = 600, within 250 of any ray), far below EPS. Larger spheres (the
/// 1e5 walls: |b| ~ 1e5, where an ulp is 8e-3) take the divide; the two kinds form separate
/// test groups.
pub(super) const SMALL_RADIUS: f32 = 1e3;

/// Up to this radius a hit point is put back on its sphere as centre + r·n: an ulp of the centre
/// and of r·n is at most 8e-6 here, far below the error of a grazing hit's distance (the
/// discriminant b² − C loses about an ulp of b², ~1e-3 at this scene's scale, and its square
/// root magnifies that where the discriminant is small: points up to 1.3e-4 off were seen).
/// Larger spheres (the walls, the light) keep the hit point as computed: an ulp of 1e5 is 8e-3.
pub(super) const REPROJECT_RADIUS: f32 = 100.0;

/// How a hit surface scatters, as a code in a float table so every lane looks its own up with
/// the other shading data. Each [`Material`] maps to one code here, and `shade` asks for each
/// by [`Surface::is`]: a material with no code does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Surface {
    /// Cosine-weighted diffuse.
    Diffuse,
    /// Perfect mirror.
    Mirror,
    /// Dielectric with smallpt's index of refraction.
    Glass,
}

impl Surface {
    fn of(m: Material) -> Surface {
        match m {
            Material::Diffuse => Surface::Diffuse,
            Material::Mirror => Surface::Mirror,
            Material::Glass => Surface::Glass,
        }
    }

    /// The code in [`Tables::kind`].
    fn code(self) -> f32 {
        match self {
            Surface::Diffuse => 0.0,
            Surface::Mirror => 1.0,
            Surface::Glass => 2.0,
        }
    }

    /// Lanes whose looked-up `kind` is this surface.
    #[inline(always)]
    pub(super) fn is<L: Lanes>(self, l: L, kind: L::F) -> L::M {
        l.eq(kind, l.splat(self.code()))
    }
}

/// The scene in lane-friendly tables.
pub(super) struct Tables {
    pub n: usize,
    /// Per sphere: an anchor point on the surface and `w` = centre − anchor (|w| = radius).
    pub anchor: [[f32; MAX_SPHERES]; 3],
    /// The axis `w` lies along, and its component there (± radius).
    pub axis: [u8; MAX_SPHERES],
    pub w_axis: [f32; MAX_SPHERES],
    /// Sphere indices in test order: the six walls first when the scene is smallpt's closed box
    /// (see [`walls`]), then the others grouped as big x, y, z, small x, y, z (see
    /// [`SMALL_RADIUS`]); where each group ends.
    pub order: [u8; MAX_SPHERES],
    pub ends: [usize; 6],
    /// The box's walls, as (low, high) pairs along x, y, z, when `order` starts with them.
    pub walls: Option<walls::Walls>,
    /// The walls' constants by side, 2·axis + (1 for the wall at the high end): what
    /// `intersect::one_wall` looks up per lane.
    pub sides: Sides,
    /// Per sphere, its index in the tables looked up at a hit (`center` to `kind`): the spheres
    /// that reflect light first, then the black ones (smallpt's front wall and light). A path
    /// ends at a black sphere, so with at most 8 of the others (`narrow`) AVX2 looks each table
    /// up with one permute.
    pub slot: [u8; MAX_SPHERES],
    /// Spheres that are not black.
    pub live: usize,
    narrow: bool,
    pub center: [[f32; MAX_SPHERES]; 3],
    /// 1 / radius.
    pub inv_radius: [f32; MAX_SPHERES],
    /// The radius where hit points are put back on the sphere (see `shade::scatter`): spheres
    /// up to [`REPROJECT_RADIUS`]; 0 for the others, whose hit points stay as computed.
    pub reproject: [f32; MAX_SPHERES],
    pub emission: [[f32; MAX_SPHERES]; 3],
    /// 1 where the sphere emits, else 0.
    pub emits: [f32; MAX_SPHERES],
    pub color: [[f32; MAX_SPHERES]; 3],
    /// [`Surface::code`]s.
    pub kind: [f32; MAX_SPHERES],
}

/// The six walls' intersection constants (as `intersect::SphereLanes` holds them), indexed by
/// side: 2·axis + (1 for the wall at the high end). Zero when the scene is not a closed box.
#[derive(Default)]
pub(super) struct Sides {
    pub anchor: [[f32; MAX_SPHERES]; 3],
    pub w: [f32; MAX_SPHERES],
    pub w2: [f32; MAX_SPHERES],
    /// The wall's slot, as a float.
    pub id: [f32; MAX_SPHERES],
}

impl Tables {
    /// Tables for `scene` (at most [`MAX_SPHERES`] spheres) seen through `frame`: with the wall
    /// pairs when every camera ray of the image starts inside the box.
    pub fn new(scene: &Scene, frame: &CameraFrame) -> Tables {
        Tables::build(scene, &walls::camera_starts(frame), walls::camera_is_level(frame))
    }

    /// [`Tables::new`] for the pixels whose camera rays all start inside the box: with the wall
    /// pairs when the ray through the image's centre does. The caller traces the other pixels
    /// with [`Tables::new`]'s tables (see `walls::Starts`).
    pub fn inner(scene: &Scene, frame: &CameraFrame) -> Tables {
        Tables::build(scene, &[walls::centre_start(frame)], walls::camera_is_level(frame))
    }

    /// [`Tables::new`] with every sphere tested on every step, as for a scene that is not a
    /// closed box.
    #[cfg(test)]
    pub fn without_walls(scene: &Scene, frame: &CameraFrame) -> Tables {
        Tables::build(scene, &walls::camera_starts(frame), false)
    }

    /// The tables, with the wall pairs if `use_walls` and the box holds every point in `starts`.
    fn build(scene: &Scene, starts: &[Vec3], use_walls: bool) -> Tables {
        // `Fast::with_path` refuses larger scenes with an error before they get here.
        assert!(scene.spheres.len() <= MAX_SPHERES, "the fast engine holds at most {MAX_SPHERES} spheres");
        let z = [[0.0; MAX_SPHERES]; 3];
        let mut k = Tables {
            n: scene.spheres.len(),
            anchor: z,
            axis: [0; MAX_SPHERES],
            w_axis: [0.0; MAX_SPHERES],
            order: [0; MAX_SPHERES],
            ends: [0; 6],
            walls: None,
            sides: Sides::default(),
            slot: [0; MAX_SPHERES],
            live: 0,
            narrow: false,
            center: z,
            inv_radius: [0.0; MAX_SPHERES],
            reproject: [0.0; MAX_SPHERES],
            emission: z,
            emits: [0.0; MAX_SPHERES],
            color: z,
            kind: [Surface::Diffuse.code(); MAX_SPHERES],
        };
        let black = |s: &Sphere| s.color == Vec3::ZERO;
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
            // intersection never forms 1e10-sized terms that cancel.
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
            k.reproject[h] = if s.radius <= f64::from(REPROJECT_RADIUS) { s.radius as f32 } else { 0.0 };
            let (e, f) = (s.emission, s.color);
            [k.emission[0][h], k.emission[1][h], k.emission[2][h]] = [e.x as f32, e.y as f32, e.z as f32];
            k.emits[h] = if e == Vec3::ZERO { 0.0 } else { 1.0 };
            [k.color[0][h], k.color[1][h], k.color[2][h]] = [f.x as f32, f.y as f32, f.z as f32];
            k.kind[h] = Surface::of(s.material).code();
        }
        // Each wall's w must lie along its pair's axis, and the two anchors of a pair may differ
        // only along it (true for smallpt; `intersect::ahead` relies on both).
        k.walls = walls::find(scene, starts).filter(|w| {
            use_walls
                && (0..3).all(|a| {
                    let [lo, hi] = w.pairs[a];
                    [lo, hi].iter().all(|&i| usize::from(k.axis[i]) == a)
                        && (0..3).all(|b| b == a || k.anchor[b][lo] == k.anchor[b][hi])
                })
        });
        let mut order: Vec<u8> = Vec::new();
        if let Some(w) = &k.walls {
            order.extend(w.pairs.iter().flatten().map(|&i| i as u8));
            for (side, &i) in w.pairs.iter().flatten().enumerate() {
                (0..3).for_each(|j| k.sides.anchor[j][side] = k.anchor[j][i]);
                k.sides.w[side] = k.w_axis[i];
                k.sides.w2[side] = 2.0 * k.w_axis[i];
                k.sides.id[side] = f32::from(k.slot[i]);
            }
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
        k
    }

    /// Each lane's hit sphere's entry of a table indexed by slot (valid for spheres that are not
    /// black).
    #[inline(always)]
    pub fn hit<L: Lanes>(&self, l: L, t: &[f32; MAX_SPHERES], id: L::U) -> L::F {
        if self.narrow { l.lookup8(t, id) } else { l.lookup(t, id) }
    }

    /// [`Tables::hit`] for a table of 3-vectors.
    #[inline(always)]
    pub fn hit3<L: Lanes>(&self, l: L, t: &[[f32; MAX_SPHERES]; 3], id: L::U) -> V3<L::F> {
        V3 { x: self.hit(l, &t[0], id), y: self.hit(l, &t[1], id), z: self.hit(l, &t[2], id) }
    }

    /// Each lane's sphere's entry of a table, for any sphere (black ones included).
    #[inline(always)]
    pub fn any3<L: Lanes>(&self, l: L, t: &[[f32; MAX_SPHERES]; 3], id: L::U) -> V3<L::F> {
        V3 { x: l.lookup(&t[0], id), y: l.lookup(&t[1], id), z: l.lookup(&t[2], id) }
    }

    /// Tables whose box planes never settle which wall a ray meets (an infinite `Walls::sag`):
    /// every step tests the three walls ahead, as before `intersect::one_wall`.
    #[cfg(test)]
    pub fn unsure_of_walls(mut self) -> Tables {
        if let Some(w) = &mut self.walls {
            w.sag = [f32::INFINITY; 3];
        }
        self
    }

    /// Looks hit tables up over all 16 entries even when the spheres that are not black fit in 8.
    #[cfg(test)]
    pub fn wide_lookups(mut self) -> Tables {
        self.narrow = false;
        self
    }
}
