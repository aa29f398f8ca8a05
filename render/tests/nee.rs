//! `engine=nee`: smallpt's expected image (statistically, on every SIMD path) with far less
//! noise per sample, reproducible like `fast`, and plain path tracing where no light can be
//! sampled.

mod common;

use common::{as_f32, means, paths, reference, render_on, render_with, rmse};
use render::color::{SubpixelSums, resolve};
use render::engine::Engine;
use render::engine::fast::{Fast, NoLight, SimdPath};
use render::scene::Sphere;
use render::vec3::Vec3;
use render::{CancelToken, EngineKind, Format, RenderRequest, Rgb, RowOrder, Scene};
use std::sync::OnceLock;

fn request(engine: EngineKind, width: u32, height: u32, spp: u32, seed: u32) -> RenderRequest {
    RenderRequest { width, height, spp, engine, format: Format::Pfm, seed, ..RenderRequest::default() }
}

/// A render's per-subpixel sums (top row first) in `k` batches of consecutive sample indices:
/// independent estimates, before smallpt's per-subpixel clamp, of what both estimators must
/// agree on in expectation at any spp.
struct Batches {
    sums: Vec<Vec<SubpixelSums>>,
    /// Samples per subpixel in each batch.
    per_batch: u32,
}

impl Batches {
    fn render(path: SimdPath, req: &RenderRequest, k: u32) -> Batches {
        use rayon::prelude::*;
        let engine = Fast::with_path(&Scene::cornell(), req, path).unwrap();
        let n = req.samples_per_subpixel();
        assert_eq!(n % k, 0);
        let sums = (0..k)
            .map(|b| {
                (0..req.height)
                    .into_par_iter()
                    .flat_map_iter(|y| {
                        let mut sums = vec![[[0.0; 3]; 4]; req.width as usize];
                        engine
                            .accumulate_span(y, 0, b * n / k..(b + 1) * n / k, &mut sums, &CancelToken::new())
                            .unwrap();
                        sums
                    })
                    .collect()
            })
            .collect();
        Batches { sums, per_batch: n / k }
    }

    /// Each batch's per-pixel mean radiance, unclamped.
    fn unclamped(&self) -> Vec<Vec<[f64; 3]>> {
        let per = f64::from(4 * self.per_batch);
        self.sums
            .iter()
            .map(|img| {
                img.iter().map(|s| std::array::from_fn(|c| s.iter().map(|sub| sub[c]).sum::<f64>() / per)).collect()
            })
            .collect()
    }

    /// The image all the batches make together, clamped as smallpt does: the render's pixels.
    fn image(&self) -> Vec<[f32; 3]> {
        let n = self.per_batch * self.sums.len() as u32;
        (0..self.sums[0].len())
            .map(|i| {
                let mut total: SubpixelSums = [[0.0; 3]; 4];
                for b in &self.sums {
                    for (t, s) in total.iter_mut().zip(&b[i]) {
                        (0..3).for_each(|c| t[c] += s[c]);
                    }
                }
                let p = resolve(&total, n);
                [p.x as f32, p.y as f32, p.z as f32]
            })
            .collect()
    }
}

/// nee at 128×96 spp 1024 (seed 4) on `path` in 8 batches, rendered once and shared.
fn nee_1024(path: SimdPath) -> &'static Batches {
    static RENDERS: [OnceLock<Batches>; 4] = [const { OnceLock::new() }; 4];
    RENDERS[path as usize].get_or_init(|| Batches::render(path, &request(EngineKind::Nee, 128, 96, 1024, 4), 8))
}

/// At smallpt's highest reference spp (128×96, 4096) the channel means are within 0.5 % of
/// smallpt's, and the image is closer to smallpt's than a second smallpt render is (the README's
/// floor): what is left is mostly the reference's own noise.
#[test]
fn converged_means_match_smallpts_on_the_widest_path() {
    let want = reference("smallpt-128x96-4096spp.pfm");
    let got = as_f32(&render_on(SimdPath::detected(), &Scene::cornell(), &request(EngineKind::Nee, 128, 96, 4096, 0)));
    let (mg, mw) = (means(&got), means(&want.pixels));
    let rmse = rmse(&got, &want.pixels);
    eprintln!("nee 4096: rmse {rmse:.4} (smallpt vs smallpt 0.0245), means {mg:.4?} vs {mw:.4?}");
    for c in 0..3 {
        assert!((mg[c] - mw[c]).abs() <= 0.005 * mw[c], "channel {c}: {} vs smallpt's {}", mg[c], mw[c]);
    }
    assert!(rmse < 0.0245, "rmse {rmse}");
}

/// Every path: at spp 1024 the image is already closer to smallpt's 4096 spp reference than a
/// second smallpt render at 4096 is, with channel means within 0.5 %.
#[test]
fn every_path_matches_the_4096spp_reference_at_a_quarter_of_the_samples() {
    let want = reference("smallpt-128x96-4096spp.pfm");
    for path in paths() {
        let got = nee_1024(path).image();
        // The batches add up to the render (a few rows, checked bit for bit).
        let engine = Fast::with_path(&Scene::cornell(), &request(EngineKind::Nee, 128, 96, 1024, 4), path).unwrap();
        for y in [0, 50] {
            let mut row = vec![Rgb::ZERO; 128];
            engine.render_row(y, &mut row, &CancelToken::new()).unwrap();
            assert!(as_f32(&row)[..] == got[y as usize * 128..][..128], "{}: row {y}", path.name());
        }
        let (mg, mw) = (means(&got), means(&want.pixels));
        let rmse = rmse(&got, &want.pixels);
        eprintln!("{} nee 1024: rmse {rmse:.4}, means {mg:.4?} vs {mw:.4?}", path.name());
        assert!(rmse < 0.0245, "{}: rmse {rmse}", path.name());
        for c in 0..3 {
            assert!((mg[c] - mw[c]).abs() <= 0.005 * mw[c], "{}: channel {c}: {} vs {}", path.name(), mg[c], mw[c]);
        }
    }
}

/// A region's mean (over pixels and channels) in each batch: mean of the batches and its
/// standard error.
fn region(batches: &[Vec<[f64; 3]>], x: std::ops::Range<usize>, y: std::ops::Range<usize>) -> (f64, f64) {
    let (w, h) = (128, 96);
    let per: Vec<f64> = batches
        .iter()
        .map(|img| {
            let mut s = 0.0;
            // `y` counts from the bottom, as smallpt's does.
            for yy in y.clone() {
                for xx in x.clone() {
                    s += img[(h - 1 - yy) * w + xx].iter().sum::<f64>();
                }
            }
            s / (x.len() * y.len() * 3) as f64
        })
        .collect();
    let k = per.len() as f64;
    let mean = per.iter().sum::<f64>() / k;
    let var = per.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0);
    (mean, (var / k).sqrt())
}

/// Unbiased where light sampling does the most and where it cannot help: before the clamp, the
/// nee render's mean radiance agrees with a long `fast` render's within 4.5 standard errors (batch
/// means, 8 batches each) over the whole image and in each region — the floor under the light,
/// the caustic the glass ball focuses on the floor, and the light's reflection in the mirror
/// ball (both found by chance in either engine) — on every path.
#[test]
fn unbiased_per_region_against_a_long_fast_render() {
    let regions = [
        ("whole image", 0..128, 0..96),
        ("floor under the light", 60..68, 8..12),
        ("caustic under the glass ball", 84..94, 9..13),
        ("the light in the mirror ball", 46..51, 33..37),
    ];
    let fast = Batches::render(SimdPath::detected(), &request(EngineKind::Fast, 128, 96, 4096, 3), 8).unclamped();
    for path in paths() {
        let nee = nee_1024(path).unclamped();
        for (name, x, y) in regions.clone() {
            let ((f, fe), (n, ne)) = (region(&fast, x.clone(), y.clone()), region(&nee, x, y));
            let z = (n - f) / (fe * fe + ne * ne).sqrt();
            eprintln!("{} {name}: nee {n:.4} ± {ne:.4}, fast {f:.4} ± {fe:.4}: z = {z:+.2}", path.name());
            assert!(z.abs() < 4.5, "{} {name}: nee {n} ± {ne} vs fast {f} ± {fe}", path.name());
        }
        // Where light sampling works, it works: under the light the batches scatter a tenth as
        // much as fast's do with four times the samples.
        let (f, n) = (region(&fast, 60..68, 8..12).1, region(&nee, 60..68, 8..12).1);
        assert!(n < 0.5 * f, "{}: floor under the light: nee ± {n} vs fast ± {f}", path.name());
    }
}

/// Scalar and SSE2 do the same IEEE operations in the same order: bit for bit the same image.
#[test]
fn scalar_is_sse2_bit_for_bit() {
    let req = request(EngineKind::Nee, 64, 48, 32, 0);
    assert!(render_on(SimdPath::Scalar, &Scene::cornell(), &req) == render_on(SimdPath::Sse2, &Scene::cornell(), &req));
}

#[test]
fn bit_identical_for_any_thread_count_and_row_order() {
    let req = request(EngineKind::Nee, 64, 48, 16, 0);
    let one = render_with(1, RowOrder::TopDown, &req);
    assert!(one == render_with(2, RowOrder::TopDown, &req));
    assert!(one == render_with(2, RowOrder::BottomUp, &req));
    assert!(one != render_with(1, RowOrder::TopDown, &RenderRequest { engine: EngineKind::Fast, ..req }));
}

/// A pixel is the same in any span of its row and in any split of its samples into passes (what
/// row bands and progressive frames rely on), on every path.
#[test]
fn a_pixel_is_the_same_in_any_crop_and_any_passes() {
    for path in paths() {
        let req = request(EngineKind::Nee, 200, 20, 64, 0);
        let engine = Fast::with_path(&Scene::default(), &req, path).unwrap();
        let cancel = CancelToken::new();
        let mut full = vec![Rgb::ZERO; 200];
        engine.render_row(7, &mut full, &cancel).unwrap();
        for (x0, len) in [(0, 1), (13, 5), (131, 69), (3, 190)] {
            let mut span = vec![Rgb::ZERO; len];
            engine.render_span(7, x0, &mut span, &cancel).unwrap();
            assert!(span[..] == full[x0 as usize..][..len], "{}: span at {x0}", path.name());
        }
        let (mut once, mut passes) = (vec![[[0.0; 3]; 4]; 200], vec![[[0.0; 3]; 4]; 200]);
        engine.accumulate_span(7, 0, 0..16, &mut once, &cancel).unwrap();
        for r in [0..1, 1..4, 4..16] {
            engine.accumulate_span(7, 0, r, &mut passes, &cancel).unwrap();
        }
        assert!(once == passes, "{}: passes", path.name());
    }
}

/// A scene whose light is not a cap through one wall (here a small sphere hanging in the room)
/// falls back to plain path tracing, says why, and renders `fast`'s image exactly.
#[test]
fn no_sampleable_light_falls_back_to_plain_path_tracing() {
    let mut scene = Scene::cornell();
    scene.spheres[8] = Sphere { radius: 8.0, center: Vec3::new(50.0, 60.0, 80.0), ..scene.spheres[8] };
    let req = request(EngineKind::Nee, 48, 36, 16, 0);
    let nee = Fast::with_path(&scene, &req, SimdPath::detected()).unwrap();
    assert_eq!(nee.fallback(), Some(&NoLight::NoCap));
    assert_eq!(Fast::with_path(&Scene::cornell(), &req, SimdPath::detected()).unwrap().fallback(), None);
    let fast = RenderRequest { engine: EngineKind::Fast, ..req };
    assert!(render_on(SimdPath::detected(), &scene, &req) == render_on(SimdPath::detected(), &scene, &fast));
}

/// smallpt's scene samples its light at any size and aspect: 16:9 and other wide images start
/// their side columns' camera rays beyond the side walls, and small ones their top row's above
/// the ceiling. Those pixels are traced by plain path tracing, the rest with light sampling: the
/// image is not `fast`'s. (nee used to fall back to plain path tracing for the whole image,
/// 1920×1080 included, with no word of it.) A pixel whose rays start outside is `fast`'s.
#[test]
fn wide_and_small_images_sample_the_light() {
    for (w, h) in [(1920, 1080), (64, 24), (8, 6), (1024, 768)] {
        let req = request(EngineKind::Nee, w, h, 4, 0);
        let nee = Fast::with_path(&Scene::cornell(), &req, SimdPath::detected()).unwrap();
        assert_eq!(nee.fallback(), None, "{w}x{h}");
    }
    let req = request(EngineKind::Nee, 64, 24, 16, 0);
    let nee = render_on(SimdPath::detected(), &Scene::cornell(), &req);
    let fast = render_on(SimdPath::detected(), &Scene::cornell(), &RenderRequest { engine: EngineKind::Fast, ..req });
    let row = |img: &[Rgb], y: usize| img[y * 64..][..64].to_vec();
    // The middle row: its side pixels start outside (the same as fast), its centre inside.
    let (n, f) = (row(&nee, 12), row(&fast, 12));
    assert!(n[0] == f[0] && n[63] == f[63], "the side pixels are traced as by fast");
    assert!(n[24..40] != f[24..40], "the centre samples the light");
}
