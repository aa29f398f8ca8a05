//! The fast engine: smallpt's estimator — same scene, camera, tent filter, 2×2 subpixels,
//! per-subpixel clamp, glass splitting at depth ≤ 2 and Russian roulette — computed in f32 with
//! independent paths in SIMD lanes.
//!
//! - **Dispatch**: [`SimdPath::detected`] picks AVX-512, AVX2+FMA, SSE2 or scalar once per
//!   process from the CPU, narrowed by `RENDER_SIMD`; a path the CPU lacks falls back to the
//!   widest one it has.
//! - **Random numbers** are keyed by position: each camera sample (seed, x, y, subpixel, index)
//!   seeds its own xorshift32 stream with a 32-bit avalanche hash the lanes compute, so a pixel's
//!   value does not depend on threads, row order, tiling, or which lane traced it.
//! - **Numerics**: see `intersect.rs` — the intersection is written so the 1e5-radius walls lose
//!   no precision in f32.
//! - **Walls**: in smallpt's closed box each lane tests only the wall ahead of it on each axis
//!   (see `walls.rs` for why that is exact): six of the nine sphere tests become three. A wall
//!   is only ever left (its far root, no EPS), which keeps f32 rays from leaking out of the box.
//!   That holds for camera rays that start inside the box. Those of the side columns of a wide
//!   image (over about 1.44:1) and the top row of a small one (under 32 rows) start outside, and
//!   their pixels are traced testing every sphere by smallpt's rule, without light sampling
//!   (`walls::Starts` picks them; a pixel's kind never depends on the span rendered).
//! - **Dark paths end**: a path that hits a black sphere (smallpt's front wall or light: albedo
//!   0) has throughput zero and adds nothing more to its sample, so it ends there instead of
//!   running on to roulette as in smallpt. Every sample's expected value and variance are
//!   unchanged; this skips about a fifth of smallpt's segments (9.75 → 7.7 per camera sample).
//! - **No rays trapped in the glass ball**: a grazing hit's point, rounded up to 1e-4 inside the
//!   ball, let a ray leaving it by external reflection find the ball again from inside past the
//!   critical angle and circle in it by total internal reflection for about a thousand segments
//!   (smallpt's albedo is 0.999). Hit points on small spheres are put back on the sphere, and
//!   past depth 64 the roulette survives with probability at most 1/2 (weight 2, unbiased) for
//!   what remains (see `shade.rs`): 7.7 → 7.45 segments per camera sample.
//! - **Counting**: one segment per ray–scene intersection query, as the classic engine counts;
//!   the segments skipped above are not counted. Shadow rays are not segments.
//! - **`engine=nee`** is this engine with next-event estimation: each diffuse hit also casts a
//!   shadow ray to the light (see `light.rs`), and a ray to the light by way of the mirror ball
//!   (see `mirror.rs`), for the same expected image with far less noise.

//!
//! The modules form a one-way stack, each using only those above it: `lanes` (the instruction
//! sets, the only `unsafe` code) → `rng` → `math` → `walls` → `tables` (the scene, materials
//! encoded once) → `camera` → `intersect` → `shade` → `light` (shadow rays) → `mirror` (the light
//! seen in the mirror ball) → `trace` (the loop)
//! → this engine.

mod camera;
mod intersect;
#[allow(unsafe_code)]
mod lanes;
mod light;
mod math;
mod mirror;
mod rng;
mod shade;
mod tables;
mod trace;
mod walls;

pub use lanes::{SIMD_ENV, SimdPath, UnknownSimdPath};
pub use light::NoLight;
pub use tables::MAX_SPHERES;

use super::{Cancelled, Engine, RowStats, SceneError};
use crate::color::{Rgb, SubpixelSums, resolve};
use crate::control::CancelToken;
use crate::request::{EngineKind, RenderRequest};
use crate::scene::Scene;
use camera::Camera;
use light::Light;
use mirror::Mirror;
use tables::Tables;
use trace::{Batch, Trace, Work};
use walls::Starts;

/// Samples traced per batch (a run of pixels of one row); cancellation is checked between batches.
const BATCH_SAMPLES: u32 = 4096;

thread_local! {
    /// Each worker thread's buffers from its last row, reused for the next: a row's subpixel sums
    /// and a batch's per-sample results (150 KB at 1024 wide; 840 KB at the widest image, 8192,
    /// kept while the thread lives). Allocated and freed per row, they left glibc's thread heap
    /// with more than its trim threshold free, so every row gave the pages back (`madvise`: a
    /// TLB shootdown that interrupts the other cores) and faulted them in again, zeroed: 3 % of
    /// a 1024×768 spp 4 render's CPU time.
    static SUMS: std::cell::Cell<Vec<SubpixelSums>> = const { std::cell::Cell::new(Vec::new()) };
    static RESULTS: std::cell::Cell<Vec<[f32; 3]>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The name of the SIMD path renders use in this process (`avx512`, `avx2`, `sse2` or `scalar`).
pub fn simd_path() -> &'static str {
    SimdPath::detected().name()
}

/// The fast engine for one request: plain path tracing for `engine=fast`, with light sampling
/// for `engine=nee`.
pub struct Fast {
    trace: Trace,
    /// When some camera rays start outside smallpt's box and others inside: `trace` has the wall
    /// pairs (and the light) for the pixels whose rays all start inside, and this traces the
    /// rest testing every sphere, by plain path tracing.
    open: Option<(Trace, Starts)>,
    /// Why `engine=nee` renders by plain path tracing, when it does.
    fallback: Option<NoLight>,
    path: SimdPath,
    width: u32,
    height: u32,
    /// Samples per subpixel of a one-shot render.
    samples: u32,
}

impl Fast {
    /// The engine on the process's SIMD path ([`SimdPath::detected`]).
    pub fn new(scene: &Scene, req: &RenderRequest) -> Result<Fast, SceneError> {
        Fast::with_path(scene, req, SimdPath::detected())
    }

    /// The engine on `path`, or the widest narrower path the CPU has; an error for a scene of
    /// more than [`MAX_SPHERES`] spheres.
    pub fn with_path(scene: &Scene, req: &RenderRequest, path: SimdPath) -> Result<Fast, SceneError> {
        if scene.spheres.len() > MAX_SPHERES {
            return Err(SceneError::TooManySpheres { got: scene.spheres.len(), max: MAX_SPHERES });
        }
        let mut trace = trace(scene, req, Tables::new);
        let mut open = None;
        if trace.tables.walls.is_none() {
            let inner = self::trace(scene, req, Tables::inner);
            if let Some(w) = &inner.tables.walls {
                let frame = scene.camera.frame(req.width, req.height);
                let starts = Starts::new(scene, w, &frame, req.width, req.height);
                open = Some((std::mem::replace(&mut trace, inner), starts));
            }
        }
        let mut fallback = None;
        if req.engine == EngineKind::Nee {
            match Light::find(scene, &trace.tables) {
                Ok(light) => {
                    trace.mirror = Mirror::find(scene, &light, &trace.tables);
                    trace.light = Some(light);
                }
                Err(why) => fallback = Some(why),
            }
        }
        Ok(Fast {
            trace,
            open,
            fallback,
            path: path.clamp_to_cpu(),
            width: req.width,
            height: req.height,
            samples: req.samples_per_subpixel(),
        })
    }

    /// The path this engine runs.
    pub fn path(&self) -> SimdPath {
        self.path
    }

    /// Why an `engine=nee` render samples no light and is plain path tracing; `None` when it
    /// samples one (or the request is `engine=fast`).
    pub fn fallback(&self) -> Option<&NoLight> {
        self.fallback.as_ref()
    }

    /// Renders pixels `x0 .. x0 + out.len()` of image row `row` (0 is the top): each pixel's value
    /// is the same as in a full render.
    pub fn render_span(&self, row: u32, x0: u32, out: &mut [Rgb], cancel: &CancelToken) -> Result<RowStats, Cancelled> {
        let mut sums = SUMS.take();
        sums.clear();
        sums.resize(out.len(), [[0.0; 3]; 4]);
        let stats = self.accumulate_span(row, x0, 0..self.samples, &mut sums, cancel);
        if stats.is_ok() {
            for (pixel, s) in out.iter_mut().zip(&sums) {
                *pixel = resolve(s, self.samples);
            }
        }
        SUMS.set(sums);
        stats
    }

    /// Traces samples `samples` (a range of indices, the same for each subpixel) of pixels
    /// `x0 .. x0 + sums.len()` of image row `row`, adding each sample's radiance to its
    /// subpixel's sum in index order. Passes `0..a`, `a..b`, … leave the sums bit for bit what
    /// one pass `0..b` leaves: a sample's numbers depend only on its position and index, and the
    /// additions happen in the same order.
    pub fn accumulate_span(
        &self,
        row: u32,
        x0: u32,
        samples: std::ops::Range<u32>,
        sums: &mut [SubpixelSums],
        cancel: &CancelToken,
    ) -> Result<RowStats, Cancelled> {
        assert!(row < self.height && x0 as usize + sums.len() <= self.width as usize, "span outside the image");
        let count = samples.len() as u32;
        if count == 0 {
            return Ok(RowStats::default());
        }
        let per_pixel = 4 * count as usize;
        let batch = (BATCH_SAMPLES as usize / per_pixel).max(1);
        let y = self.height - 1 - row;
        let mut work = Work::new(y, samples.start, count);
        work.results = RESULTS.take();
        let stats = match &self.open {
            None => self.accumulate_batches(&self.trace, &mut work, x0, batch, sums, cancel),
            Some((open, starts)) => {
                let mut runs = Vec::new();
                starts.runs(y, x0..x0 + sums.len() as u32, &mut runs);
                runs.into_iter().try_fold(RowStats::default(), |_, (xs, inside)| {
                    let trace = if inside { &self.trace } else { open };
                    let span = &mut sums[(xs.start - x0) as usize..(xs.end - x0) as usize];
                    self.accumulate_batches(trace, &mut work, xs.start, batch, span, cancel)
                })
            }
        };
        RESULTS.set(std::mem::take(&mut work.results));
        stats
    }

    /// [`Fast::accumulate_span`]'s batches, `batch` pixels each, traced with `trace` into `work`.
    fn accumulate_batches(
        &self,
        trace: &Trace,
        work: &mut Work,
        x0: u32,
        batch: usize,
        sums: &mut [SubpixelSums],
        cancel: &CancelToken,
    ) -> Result<RowStats, Cancelled> {
        let (count, per_pixel) = (work.samples.count, 4 * work.samples.count as usize);
        for (i, chunk) in sums.chunks_mut(batch).enumerate() {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            work.samples.x0 = x0 + (i * batch) as u32;
            work.pixels = chunk.len() as u32;
            lanes::dispatch(self.path, Batch { trace, work: &mut *work });
            for (pixel, results) in chunk.iter_mut().zip(work.results.chunks_exact(per_pixel)) {
                for (sub, r) in pixel.iter_mut().zip(results.chunks_exact(count as usize)) {
                    // In locals, the three sums stay in registers over the subpixel's samples.
                    let mut acc = *sub;
                    for s in r {
                        acc = [acc[0] + f64::from(s[0]), acc[1] + f64::from(s[1]), acc[2] + f64::from(s[2])];
                    }
                    *sub = acc;
                }
            }
        }
        Ok(RowStats { segments: work.segments })
    }
}

/// The tables (made by `tables`) and camera of `req` on `scene`.
fn trace(scene: &Scene, req: &RenderRequest, tables: fn(&Scene, &crate::scene::CameraFrame) -> Tables) -> Trace {
    let frame = scene.camera.frame(req.width, req.height);
    Trace {
        tables: tables(scene, &frame),
        camera: Camera::new(&frame, req.width, req.height, req.seed),
        light: None,
        mirror: None,
    }
}

impl Engine for Fast {
    fn render_row(&self, row: u32, out: &mut [Rgb], cancel: &CancelToken) -> Result<RowStats, Cancelled> {
        self.render_span(row, 0, out, cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{EngineKind, Format};
    use crate::vec3::Vec3;

    /// Renders `req` top row first on this CPU's widest path, with or without the wall pairs.
    fn render(req: &RenderRequest, use_walls: bool) -> Vec<Rgb> {
        let tables = if use_walls { Tables::new } else { Tables::without_walls };
        render_with(req, trace(&Scene::cornell(), req, tables)).0
    }

    /// The image `kernel` renders for `req` on this CPU's widest path, and the segments traced.
    fn render_with(req: &RenderRequest, trace: Trace) -> (Vec<Rgb>, u64) {
        render_on(SimdPath::detected(), req, trace)
    }

    /// [`render_with`] on `path`.
    fn render_on(path: SimdPath, req: &RenderRequest, trace: Trace) -> (Vec<Rgb>, u64) {
        let engine = Fast {
            trace,
            open: None,
            fallback: None,
            path,
            width: req.width,
            height: req.height,
            samples: req.samples_per_subpixel(),
        };
        let mut img = vec![Rgb::ZERO; (req.width * req.height) as usize];
        let mut segments = 0;
        for (row, out) in img.chunks_mut(req.width as usize).enumerate() {
            segments += engine.render_row(row as u32, out, &CancelToken::new()).unwrap().segments;
        }
        (img, segments)
    }

    /// A fast-engine PFM request at spp 16.
    fn pfm_request(width: u32, height: u32, seed: u32) -> RenderRequest {
        RenderRequest {
            width,
            height,
            spp: 16,
            engine: EngineKind::Fast,
            format: Format::Pfm,
            seed,
            ..RenderRequest::default()
        }
    }

    /// A lane that hits a black sphere reads other spheres' table entries (see `Tables::slot`)
    /// but ends at once: nothing of them reaches the image.
    #[test]
    fn narrow_lookups_change_nothing() {
        let req = pfm_request(64, 48, 9);
        let narrow = render_with(&req, trace(&Scene::cornell(), &req, Tables::new)).0;
        let wide = render_with(&req, trace(&Scene::cornell(), &req, |s, f| Tables::new(s, f).wide_lookups())).0;
        assert!(narrow == wide, "images differ");
    }

    /// Testing only the wall the box's planes point to (`intersect::one_wall`) finds the same
    /// hits as testing the three walls ahead: the same image, bit for bit, at a size where
    /// thousands of rays leave the box within a wall's bulge of an edge.
    #[test]
    fn one_wall_finds_the_nearest_of_the_three() {
        let req = pfm_request(128, 96, 13);
        for path in SimdPath::ALL.into_iter().filter(|p| p.usable()) {
            let one = render_on(path, &req, trace(&Scene::cornell(), &req, Tables::new)).0;
            let three = trace(&Scene::cornell(), &req, |s, f| Tables::new(s, f).unsure_of_walls());
            let three = render_on(path, &req, three).0;
            let differ = one.iter().zip(&three).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{path:?}: pixels that differ, of {}", one.len());
        }
    }

    /// No ray gets out of smallpt's box: f32 hit points where two walls meet land a rounding
    /// error outside one of them, and the wall tests in `nearer` must still stop the next ray
    /// (before they did, about 1 segment in 10⁴ samples started outside the box). Nor is one
    /// trapped in the glass ball (see `shade::scatter`).
    #[test]
    fn no_ray_leaks_out_of_the_box_or_into_the_glass() {
        let req = RenderRequest { width: 128, height: 96, spp: 64, seed: 11, ..pfm_request(128, 96, 11) };
        let trace = trace(&Scene::cornell(), &req, Tables::new);
        let mut work = Work::new(0, 0, req.samples_per_subpixel());
        work.pixels = req.width;
        for y in 0..req.height {
            work.samples.y = y;
            lanes::dispatch(SimdPath::detected(), Batch { trace: &trace, work: &mut work });
        }
        assert_eq!(work.outside, 0, "segments that started outside the box, of {}", work.segments);
        // Rays trapped in the glass ball run to depth 64 and beyond; with hit points put back on
        // the ball, 258 segments past depth 40 here, and 4 460 without.
        assert!(work.deep < 1500, "{} segments past depth {}, of {}", work.deep, trace::DEEP, work.segments);
    }

    /// Paths are as long as the estimator makes them: smallpt's 9.75 segments per camera sample
    /// less the dark tails (see the module docs), 7.45 measured (7.66 while rays could be trapped
    /// circling inside the glass ball). Runaway paths or leaks would move this long before they
    /// showed in an image mean.
    #[test]
    fn segments_per_sample_are_the_estimators() {
        let req = pfm_request(64, 48, 5);
        let (_, segments) = render_with(&req, trace(&Scene::cornell(), &req, Tables::new));
        let per_sample = segments as f64 / req.total_samples() as f64;
        assert!((7.3..7.6).contains(&per_sample), "{per_sample} segments per sample");
    }

    /// The general path (every sphere on every step with smallpt's nearest-root-past-EPS rule, as
    /// for a scene that is not smallpt's box) renders the same image as the one that tests one
    /// wall per axis, but for the few pixels where that rule lets a ray out (see `walls.rs`).
    #[test]
    fn testing_every_wall_gives_the_same_image() {
        let req = pfm_request(96, 72, 3);
        let (cornell, frame) = (Scene::cornell(), Scene::cornell().camera.frame(96, 72));
        assert!(Tables::new(&cornell, &frame).walls.is_some(), "smallpt's room gets the wall pairs");
        assert!(Tables::without_walls(&cornell, &frame).walls.is_none());
        let (walls, all) = (render(&req, true), render(&req, false));
        let differ = walls.iter().zip(&all).filter(|(a, b)| (**a - **b).dot(**a - **b) > 1e-12).count();
        assert!(differ * 200 < walls.len(), "{differ} of {} pixels differ", walls.len());
        let mean = |img: &[Rgb]| img.iter().fold(Vec3::ZERO, |s, p| s + *p) * (1.0 / img.len() as f64);
        let (a, b) = (mean(&walls), mean(&all));
        for (a, b) in [(a.x, b.x), (a.y, b.y), (a.z, b.z)] {
            assert!((a - b).abs() < 1e-3 * a, "channel means {a} and {b}");
        }
    }
}
