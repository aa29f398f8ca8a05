//! smallpt's room: six spheres of radius 1e5 whose near sides are the walls of a box, facing in
//! pairs along x, y and z. Every ray traced with them starts inside the box (camera rays that
//! start outside, which [`Starts`] finds, are traced without them) and stays there, so along
//! each axis a ray moving toward +a meets the wall at the high end long before it could meet the
//! one at the low end — unless it moves almost parallel to them. The fast engine uses that to
//! test one wall of each pair per lane (the one ahead) instead of both: three wall tests in
//! place of six.
//!
//! **Why skipping the wall behind is exact.** Take the low wall along x: centre c, radius R,
//! c_x = lo + R, the box on its near side. A ray o + t·d inside the sphere with d_x ≥ τ can only
//! reach the near surface x = c_x − √(R² − r²) (r the distance from the sphere's x axis line)
//! where τ·t ≤ √(R² − r₀²) − √(R² − (r₀ + t)²) ≤ (2r₀t + t²) / (2√(R² − (r₀ + t)²)), r₀ the
//! start's distance from that line. Every ray leaves the box within its diagonal D, so the nearest
//! hit is within D; hence for τ = (2r₀ + D) / (2√(R² − (r₀ + D)²)) (r₀ maximised over the box)
//! the wall behind cannot be nearer, and its far side is more than R − D > D away. For smallpt,
//! τ ≈ 2.0e-3 (a ray within 0.12° of parallel to the wall); lanes under τ test both walls.
//!
//! **Walls are only left.** Every ray is inside every wall's sphere, so a wall's hit is its far
//! root (the ray leaving the sphere), taken with no EPS (see `nearer` in `kernel.rs`). In f32
//! the near root and EPS both let rays out: a hit point rounded to the outside of the wall it
//! is on re-hit that wall at t ≈ 1–3e-3 from outside and bounced out of the box; a ray leaving
//! the floor within EPS of a wall skipped the wall. Before this rule about 1 segment in 10⁴
//! samples started outside the box; now none do (a unit test counts them).
//!
//! **Measured.** Against testing every sphere on every step with smallpt's rule (nearest root
//! past EPS), a 256×192, 64 spp render differs in 39 of 49152 pixels (AVX2): those leaks.

use crate::scene::{CameraFrame, Material, Scene};
use crate::vec3::Vec3;

/// The six walls, when the scene has them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Walls {
    /// Per axis: (the wall at the low end, met moving toward −a; the wall at the high end).
    pub pairs: [[usize; 2]; 3],
    /// Per axis: lanes with |d_a| below this may meet the wall behind them; they test both.
    pub graze: [f32; 3],
    /// The box's bounds (the walls' planes): a lane whose ray has leaked outside them (it
    /// happens, rarely, where the light pierces the ceiling) is not covered by the argument
    /// above and tests every wall.
    pub lo: [f32; 3],
    pub hi: [f32; 3],
    /// Per axis: how far, at most, a wall of the pair bulges into the box from its plane inside
    /// the box's face (R − √(R² − r₀²), r₀ the face's farthest corner from the wall's axis line),
    /// doubled, plus 0.01 for f32 rounding: a ray leaving the box through that wall meets it
    /// within `sag / |d_a|` before the plane. See `intersect::one_wall`.
    pub sag: [f32; 3],
}

impl Walls {
    /// The six walls' indices in the scene.
    pub fn ids(&self) -> Vec<usize> {
        self.pairs.iter().flatten().copied().collect()
    }
}

/// The facing wall pairs of `scene`, if it is a closed box of spheres that holds every point in
/// `starts` (where camera rays begin) and every glass sphere (refraction could otherwise carry a
/// ray out of the box); `None` when the argument above does not apply, and every sphere is tested.
pub(super) fn find(scene: &Scene, starts: &[Vec3]) -> Option<Walls> {
    let p0 = *starts.first()?;
    let get = |v: Vec3, a: usize| [v.x, v.y, v.z][a];
    // Inside sphere `i` by more than `margin`.
    let inside = |i: usize, p: Vec3, margin: f64| {
        let s = &scene.spheres[i];
        let q = p - s.center;
        q.dot(q) < (s.radius - margin).powi(2)
    };
    let mut pairs = [[0; 2]; 3];
    let (mut lo, mut hi) = ([0.0; 3], [0.0; 3]);
    for a in 0..3 {
        // A wall along a contains the start and its centre lies off along a (the offset along a
        // dominates the other two).
        let walls = |high: bool| -> Vec<usize> {
            (0..scene.spheres.len())
                .filter(|&i| {
                    let off = scene.spheres[i].center - p0;
                    let along = get(off, a);
                    inside(i, p0, 0.0)
                        && (0..3).all(|b| b == a || get(off, b).abs() < along.abs())
                        && (along < 0.0) == high
                })
                .collect()
        };
        let (low, high) = (walls(false), walls(true));
        let (&[low], &[high]) = (low.as_slice(), high.as_slice()) else { return None };
        pairs[a] = [low, high];
        lo[a] = get(scene.spheres[low].center, a) - scene.spheres[low].radius;
        hi[a] = get(scene.spheres[high].center, a) + scene.spheres[high].radius;
    }
    let wall_ids: Vec<usize> = pairs.iter().flatten().copied().collect();
    if !starts.iter().all(|&p| wall_ids.iter().all(|&i| inside(i, p, START_MARGIN))) {
        return None;
    }
    let in_box = |s: &crate::scene::Sphere| {
        (0..3).all(|a| get(s.center, a) - s.radius >= lo[a] && get(s.center, a) + s.radius <= hi[a])
    };
    if scene
        .spheres
        .iter()
        .enumerate()
        .any(|(i, s)| s.material == Material::Glass && !wall_ids.contains(&i) && !in_box(s))
    {
        return None;
    }
    let diagonal = (0..3).map(|a| (hi[a] - lo[a]).powi(2)).sum::<f64>().sqrt();
    let mut graze = [0.0f32; 3];
    let mut sag = [0.0f32; 3];
    for a in 0..3 {
        for &i in &pairs[a] {
            let s = &scene.spheres[i];
            // r₀: the farthest box corner from the sphere's axis line.
            let r0 = (0..8)
                .map(|corner: usize| {
                    let p = |b: usize| if corner >> b & 1 == 1 { hi[b] } else { lo[b] };
                    (0..3).filter(|&b| b != a).map(|b| (p(b) - get(s.center, b)).powi(2)).sum::<f64>().sqrt()
                })
                .fold(0.0, f64::max);
            let reach = r0 + diagonal;
            if s.radius <= reach || s.radius <= 2.0 * diagonal {
                return None;
            }
            let tau = (2.0 * r0 + diagonal) / (2.0 * (s.radius * s.radius - reach * reach).sqrt());
            // The bound already takes the worst start and the longest ray; f32 rounding of a
            // unit direction (~1e-7) is far below it, so a small relative margin is enough.
            graze[a] = graze[a].max((1.01 * tau) as f32);
            let bulge = s.radius - (s.radius * s.radius - r0 * r0).sqrt();
            sag[a] = sag[a].max((2.0 * bulge + 0.01) as f32);
        }
    }
    Some(Walls { pairs, graze, lo: lo.map(|v| v as f32), hi: hi.map(|v| v as f32), sag })
}

/// Where camera rays can begin whose samples lie in the rectangle `fx` × `fy` of the image plane
/// (in units of `cx` and `cy` from the image's centre): the points where each coordinate of a
/// start takes its extremes over the rectangle, corners first. A start is o + near·d/|d| with
/// d = cx·fx + cy·fy + dir, and smallpt's `cx` lies along x, `cy` in the y–z plane, both square
/// to each other. Along a row (fy fixed) x moves monotonically with fx, while y and z move
/// toward the eye's as |d| grows away from fx*, where |d| is least: the extremes are the corners
/// and the point nearest fx*. Along a column (fx fixed) y moves monotonically with fy (the
/// direction turns through far less than the 90° to the vertical), x moves toward the eye's
/// away from fy*, and z is nearest the front at the ends: the corners and the point nearest fy*.
/// Inside, only the start deepest into the box can be an extreme: nearest fx* along the row,
/// and where (d_x² + d_y²)/d_z² is least along that column. A test checks these against
/// a dense grid; [`find`] also asks for [`START_MARGIN`]. The image's corners alone, as used
/// to be checked, missed the middle of its top edge, the highest start: above the ceiling for
/// images under 32 rows (4:3).
pub(super) fn starts_from(frame: &CameraFrame, fx: [f64; 2], fy: [f64; 2]) -> [Vec3; 9] {
    let (cx, cy, dir) = (frame.cx, frame.cy, frame.dir);
    let least_x = (-cx.dot(dir) / cx.dot(cx)).clamp(fx[0], fx[1]);
    let least_y = (-cy.dot(dir) / cy.dot(cy)).clamp(fy[0], fy[1]);
    // (d_x² + d_y²)/d_z² with d_y = a·fy + b, d_z = c·fy + e is least where
    // (a·fy + b)(a·e − c·b) = c·d_x².
    let (a, b, c, e) = (cy.y, dir.y, cy.z, dir.z);
    let dx = cx.x * least_x + dir.x;
    let deep_y = ((c * dx * dx / (a * e - c * b) - b) / a).clamp(fy[0], fy[1]);
    [
        (fx[0], fy[0]),
        (fx[1], fy[0]),
        (fx[0], fy[1]),
        (fx[1], fy[1]),
        (least_x, fy[0]),
        (least_x, fy[1]),
        (fx[0], least_y),
        (fx[1], least_y),
        (least_x, deep_y),
    ]
    .map(|(x, y)| frame.origin + (cx * x + cy * y + dir).norm() * frame.near)
}

/// Where the camera rays of an image with `frame` can begin (the points [`find`] checks are
/// inside the box): [`starts_from`] the region its samples reach, which the tent filter takes a
/// quarter pixel past each edge.
pub(super) fn camera_starts(frame: &CameraFrame) -> [Vec3; 9] {
    let [rx, ry] = frame.reach;
    starts_from(frame, [-rx, rx], [-ry, ry])
}

/// Where the ray through the image's centre begins.
pub(super) fn centre_start(frame: &CameraFrame) -> Vec3 {
    frame.origin + frame.dir * frame.near
}

/// Whether a camera frame suits [`starts_from`]: `cx` along x, `cy` square to it.
pub(super) fn camera_is_level(frame: &CameraFrame) -> bool {
    frame.cx.y == 0.0 && frame.cx.z == 0.0 && frame.cy.x == 0.0
}

/// How far inside every wall [`find`] wants each camera start: more than f32 rounding moves a
/// start (about 1e-5), and room for the small terms the argument in [`starts_from`] ignores.
const START_MARGIN: f64 = 0.01;

/// Which pixels of an image have every camera ray start inside the box, when some do not: a
/// wide image's side columns (smallpt starts camera rays 140 along them, beyond the side walls
/// at aspects over about 1.44), a small one's top row (above the ceiling). The engine traces
/// those pixels testing every sphere, as smallpt does, and the rest with the wall pairs.
#[derive(Clone, Debug)]
pub(super) struct Starts {
    frame: CameraFrame,
    /// The walls' centres and their radii less [`START_MARGIN`], squared.
    walls: [(Vec3, f64); 6],
    width: f64,
    height: f64,
}

/// The fewest pixels [`Starts::runs`] splits a run into: a block of this many that holds an
/// outside pixel is traced whole as outside (correct, only slower), which bounds the checks per
/// row to a few per block.
const BLOCK: u32 = 8;

impl Starts {
    /// The starts of a `width`×`height` image with `frame` in `scene`'s box `walls`.
    pub fn new(scene: &Scene, walls: &Walls, frame: &CameraFrame, width: u32, height: u32) -> Starts {
        let ids = walls.ids();
        let walls = std::array::from_fn(|i| {
            let s = &scene.spheres[ids[i]];
            (s.center, (s.radius - START_MARGIN).powi(2))
        });
        Starts { frame: *frame, walls, width: f64::from(width), height: f64::from(height) }
    }

    /// Whether every camera ray of pixels `xs` of row `y` (smallpt's, 0 at the bottom) starts
    /// inside the box, [`START_MARGIN`] from every wall.
    fn hold(&self, xs: &std::ops::Range<u32>, y: u32) -> bool {
        let (w, h, y) = (self.width, self.height, f64::from(y));
        let fx = [(f64::from(xs.start) - 0.25) / w - 0.5, (f64::from(xs.end) + 0.25) / w - 0.5];
        let fy = [(y - 0.25) / h - 0.5, (y + 1.25) / h - 0.5];
        starts_from(&self.frame, fx, fy).iter().all(|&p| {
            self.walls.iter().all(|&(c, r2)| {
                let q = p - c;
                q.dot(q) < r2
            })
        })
    }

    /// Pixels `xs` of row `y` (smallpt's, 0 at the bottom) as runs in order, each with whether
    /// every camera ray of its pixels starts inside the box, appended to `out`. A pixel's kind
    /// does not depend on `xs` (the blocks split from the whole row), so it renders the same in
    /// any span: row bands and crops stay byte for byte the whole image's.
    pub fn runs(&self, y: u32, xs: std::ops::Range<u32>, out: &mut Vec<(std::ops::Range<u32>, bool)>) {
        let mut row = Vec::new();
        self.split(y, 0..self.width as u32, &mut row);
        out.extend(row.into_iter().filter_map(|(r, kind)| {
            let r = r.start.max(xs.start)..r.end.min(xs.end);
            (!r.is_empty()).then_some((r, kind))
        }));
    }

    /// [`Starts::runs`] of pixels `xs`, split in halves until a part holds or is one block
    /// (adjacent runs of one kind merged).
    fn split(&self, y: u32, xs: std::ops::Range<u32>, out: &mut Vec<(std::ops::Range<u32>, bool)>) {
        if xs.is_empty() {
            return;
        }
        let inside = self.hold(&xs, y);
        if inside || xs.len() as u32 <= BLOCK {
            match out.last_mut() {
                Some((last, kind)) if *kind == inside && last.end == xs.start => last.end = xs.end,
                _ => out.push((xs, inside)),
            }
            return;
        }
        let mid = xs.start + xs.len() as u32 / 2;
        self.split(y, xs.start..mid, out);
        self.split(y, mid..xs.end, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eye_start(scene: &Scene) -> Vec<Vec3> {
        camera_starts(&scene.camera.frame(64, 48)).to_vec()
    }

    #[test]
    fn finds_smallpts_six_walls() {
        let scene = Scene::cornell();
        let w = find(&scene, &eye_start(&scene)).expect("smallpt's room is a closed box");
        // smallpt's order: left, right, back, front, bottom, top.
        assert_eq!(w.pairs, [[0, 1], [4, 5], [2, 3]]);
        for g in w.graze {
            assert!(g > 1e-3 && g < 1e-2, "graze {g}");
        }
        // The floor and ceiling bulge most, 0.051 at the far corners: 88.4 along z and 49 along
        // x from their axis line (r₀² = 10 216, R = 1e5).
        for (s, want) in w.sag.into_iter().zip([0.0948f32 + 0.01, 0.1022 + 0.01, 0.0407 + 0.01]) {
            assert!((s - want).abs() < 1e-3, "sag {s}, want about {want}");
        }
    }

    /// Camera rays reach a quarter pixel past the image: in a small image the top row's start
    /// above the ceiling (the middle of the top edge, which the corners alone missed), in a wide
    /// one the side columns' starts beyond the side walls. Those images test every wall.
    #[test]
    fn starts_beyond_the_image_edge_or_outside_the_box_test_every_wall() {
        let scene = Scene::cornell();
        let walls = |w, h| find(&scene, &camera_starts(&scene.camera.frame(w, h))).is_some();
        for (w, h) in [(1024, 768), (64, 48), (128, 96), (640, 480)] {
            assert!(walls(w, h), "{w}x{h}: every start is in the box");
        }
        for (w, h) in [(1, 1), (8, 6), (16, 12), (1920, 1080)] {
            assert!(!walls(w, h), "{w}x{h}: some start is outside the box");
        }
        // The highest start of 8×6 is above the ceiling (y = 81.6), and none of its corners is.
        let frame = scene.camera.frame(8, 6);
        let top = camera_starts(&frame).into_iter().map(|p| p.y).fold(f64::MIN, f64::max);
        let corner = |x: f64, y: f64| frame.origin + (frame.cx * x + frame.cy * y + frame.dir).norm() * frame.near;
        assert!(top > 81.6 && corner(0.5, 0.5).y < 81.6 && corner(-0.5, 0.5).y < 81.6, "top {top}");
    }

    /// A start for every point of a dense grid over the rectangle.
    fn grid(frame: &CameraFrame, fx: [f64; 2], fy: [f64; 2]) -> Vec<Vec3> {
        let n = 120;
        let at = |r: [f64; 2], i: usize| r[0] + (r[1] - r[0]) * i as f64 / n as f64;
        (0..=n)
            .flat_map(|i| (0..=n).map(move |j| (at(fx, i), at(fy, j))))
            .map(|(x, y)| frame.origin + (frame.cx * x + frame.cy * y + frame.dir).norm() * frame.near)
            .collect()
    }

    /// The points `starts_from` checks hold each coordinate's extremes over the rectangle: no
    /// start of a dense grid over it lies farther along any axis, for whole images of several
    /// aspects and for single pixels at their edges and centres.
    #[test]
    fn the_checked_starts_hold_the_extremes() {
        let scene = Scene::cornell();
        for (w, h) in [(1, 1), (8, 6), (64, 48), (1024, 768), (1920, 1080), (200, 20), (20, 200)] {
            let frame = scene.camera.frame(w, h);
            let [rx, ry] = frame.reach;
            let (pw, ph) = (1.5 / f64::from(w), 1.5 / f64::from(h));
            let mut rects = vec![([-rx, rx], [-ry, ry])];
            for (cx, cy) in [(-rx, -ry), (rx - pw, ry - ph), (-pw / 2.0, -ph / 2.0), (-rx, 0.0), (0.0, ry - ph)] {
                rects.push(([cx, cx + pw], [cy, cy + ph]));
            }
            for (fx, fy) in rects {
                let checked = starts_from(&frame, fx, fy);
                for a in 0..3 {
                    let get = |p: &Vec3| [p.x, p.y, p.z][a];
                    let (lo, hi) = checked.iter().map(get).fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
                    for p in grid(&frame, fx, fy) {
                        assert!(get(&p) >= lo - 1e-9 && get(&p) <= hi + 1e-9, "{w}x{h} {fx:?}x{fy:?} axis {a}");
                    }
                }
            }
        }
    }

    /// Every pixel `Starts::runs` calls inside has every start of a dense grid over its reach
    /// inside every wall; the runs cover the row in order; and a wide image has both kinds.
    #[test]
    fn inside_runs_hold_only_pixels_whose_rays_start_inside() {
        let scene = Scene::cornell();
        for (w, h) in [(8, 6), (24, 18), (64, 24), (192, 108), (200, 20)] {
            let frame = scene.camera.frame(w, h);
            let walls = find(&scene, &[centre_start(&frame)]).unwrap();
            let starts = Starts::new(&scene, &walls, &frame, w, h);
            let mut kinds = [0; 2];
            for y in 0..h {
                let mut runs = Vec::new();
                starts.runs(y, 0..w, &mut runs);
                assert_eq!(runs.first().unwrap().0.start, 0);
                assert!(runs.windows(2).all(|r| r[0].0.end == r[1].0.start), "{w}x{h} row {y}: {runs:?}");
                assert_eq!(runs.last().unwrap().0.end, w);
                for (xs, inside) in runs {
                    kinds[usize::from(inside)] += xs.len();
                    if !inside {
                        continue;
                    }
                    for x in xs {
                        let fx =
                            [(f64::from(x) - 0.25) / f64::from(w) - 0.5, (f64::from(x) + 1.25) / f64::from(w) - 0.5];
                        let yf = f64::from(y);
                        let fy = [(yf - 0.25) / f64::from(h) - 0.5, (yf + 1.25) / f64::from(h) - 0.5];
                        for p in grid(&frame, fx, fy).into_iter().step_by(7) {
                            for i in walls.ids() {
                                let s = &scene.spheres[i];
                                assert!((p - s.center).dot(p - s.center) < s.radius * s.radius, "{w}x{h} ({x}, {y})");
                            }
                        }
                    }
                }
            }
            assert!(kinds[1] > 0, "{w}x{h}: no pixel inside");
            if w > h {
                assert!(kinds[0] > 0, "{w}x{h}: no pixel outside");
            }
        }
    }

    #[test]
    fn an_open_box_or_a_glass_sphere_outside_tests_every_wall() {
        let scene = Scene::cornell();
        let starts = eye_start(&scene);
        let mut open = scene.clone();
        open.spheres.remove(3); // the front wall
        assert_eq!(find(&open, &starts), None);
        let mut poking = scene.clone();
        let glass = poking.spheres.iter().position(|s| s.material == Material::Glass).unwrap();
        poking.spheres[glass].center.x = 95.0;
        assert_eq!(find(&poking, &starts), None);
        assert_eq!(find(&scene, &[Vec3::new(50.0, 40.0, 500.0)]), None, "a start outside the box");
    }
}
