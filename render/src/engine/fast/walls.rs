//! smallpt's room: six spheres of radius 1e5 whose near sides are the walls of a box, facing in
//! pairs along x, y and z. Every ray starts inside the box and stays there, so along each axis a
//! ray moving toward +a meets the wall at the high end long before it could meet the one at the
//! low end — unless it moves almost parallel to them. The fast engine uses that to test one wall
//! of each pair per lane (the one ahead) instead of both: three wall tests in place of six.
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
    let inside = |i: usize, p: Vec3| {
        let s = &scene.spheres[i];
        let q = p - s.center;
        q.dot(q) < s.radius * s.radius
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
                    inside(i, p0) && (0..3).all(|b| b == a || get(off, b).abs() < along.abs()) && (along < 0.0) == high
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
    let well_inside = |i: usize, p: Vec3| {
        let s = &scene.spheres[i];
        let q = p - s.center;
        q.dot(q) < (s.radius - START_MARGIN).powi(2)
    };
    if !starts.iter().all(|&p| wall_ids.iter().all(|&i| well_inside(i, p))) {
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

/// Where the camera rays of an image with `frame` can begin (the points [`find`] checks are
/// inside the box): the edge of the region the samples reach, [`EDGE_POINTS`] points a side,
/// and its centre. Along x and y a start moves monotonically with the sample's position, so its
/// extremes lie on that edge, where the start can stray from the points checked by under 1e-3
/// (140 × (1.5 / 256)² / 8); [`find`] asks for [`START_MARGIN`]. Along z the start nearest the
/// front wall is at a corner; the deepest, near the centre, is far from the back wall. The
/// image's corners alone missed the middle of its top edge, the highest start, which for
/// images under about 56 rows lies above the ceiling (the reach past the edge is a quarter
/// pixel).
pub(super) fn camera_starts(frame: &CameraFrame) -> Vec<Vec3> {
    let [rx, ry] = frame.reach;
    let mut at = vec![(0.0, 0.0)];
    for i in 0..=EDGE_POINTS {
        let t = 2.0 * i as f64 / EDGE_POINTS as f64 - 1.0;
        at.extend([(t * rx, -ry), (t * rx, ry), (-rx, t * ry), (rx, t * ry)]);
    }
    at.into_iter().map(|(x, y)| frame.origin + (frame.cx * x + frame.cy * y + frame.dir).norm() * frame.near).collect()
}

/// Points [`camera_starts`] takes on each side of the region camera samples reach.
const EDGE_POINTS: usize = 256;

/// How far inside every wall [`find`] wants each camera start: more than the starts between the
/// points checked can stray (under 1e-3), and more than f32 rounding of a start (about 1e-5).
const START_MARGIN: f64 = 0.01;

#[cfg(test)]
mod tests {
    use super::*;

    fn eye_start(scene: &Scene) -> Vec<Vec3> {
        camera_starts(&scene.camera.frame(64, 48))
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
