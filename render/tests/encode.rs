//! Every encoder round-trips: decode with independent readers and compare with the pixels.

mod common;

use common::{PfmImage, read_pfm};

use render::color::to_int;
use render::encode::{OutputSize, output_size};
use render::{EngineKind, Format, RenderOptions, RenderRequest, RowOrder, Scene, render_rows, render_to_vec};

const W: u32 = 40;
const H: u32 = 30;

fn request(format: Format) -> RenderRequest {
    RenderRequest {
        width: W,
        height: H,
        spp: 8,
        engine: EngineKind::Classic,
        format,
        seed: 5,
        ..RenderRequest::default()
    }
}

/// The linear pixels, top row first.
fn linear() -> Vec<render::Rgb> {
    let mut px = Vec::new();
    render_rows(&Scene::default(), &request(Format::Ppm), &RenderOptions::default(), RowOrder::TopDown, |_, row| {
        px.extend_from_slice(row);
        Ok(())
    })
    .unwrap();
    px
}

fn bytes(format: Format) -> Vec<u8> {
    let out = render_to_vec(&request(format), &RenderOptions::default()).unwrap().0;
    match output_size(format, W, H) {
        OutputSize::Exact(n) => assert_eq!(out.len() as u64, n, "{format}"),
        OutputSize::AtMost(n) => assert!(out.len() as u64 <= n, "{format}"),
    }
    out
}

fn rgb8(px: &[render::Rgb]) -> Vec<u8> {
    px.iter().flat_map(|p| [to_int(p.x), to_int(p.y), to_int(p.z)]).collect()
}

#[test]
fn p6_decodes_to_the_pixels() {
    let img = image::load_from_memory_with_format(&bytes(Format::Ppm), image::ImageFormat::Pnm).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (W, H));
    assert_eq!(img.into_raw(), rgb8(&linear()));
}

#[test]
fn png_decodes_to_the_same_pixels_as_p6() {
    let png = image::load_from_memory_with_format(&bytes(Format::Png), image::ImageFormat::Png).unwrap().to_rgb8();
    let ppm = image::load_from_memory_with_format(&bytes(Format::Ppm), image::ImageFormat::Pnm).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (W, H));
    assert_eq!(png.into_raw(), ppm.into_raw());
}

#[test]
fn p3_is_smallpts_layout_of_the_same_pixels() {
    let p3 = String::from_utf8(bytes(Format::P3)).unwrap();
    let want: String =
        rgb8(&linear()).chunks(3).map(|c| format!("{} {} {} ", c[0], c[1], c[2])).collect::<Vec<_>>().concat();
    assert_eq!(p3, format!("P3\n{W} {H}\n255\n{want}"));
}

#[test]
fn pfm_parses_back_to_the_linear_values() {
    let img = read_pfm(&bytes(Format::Pfm)).unwrap();
    assert_eq!((img.width, img.height), (W as usize, H as usize));
    let want: Vec<[f32; 3]> = linear().iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
    assert_eq!(img.pixels, want);
}

/// Our PFM rows are oriented like smallpt's: per-row means of a low-spp render track the
/// reference's, and not the reference turned upside down.
#[test]
fn pfm_is_oriented_like_smallpts() {
    let reference =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/smallpt-128x96-4096spp.pfm"));
    let reference = read_pfm(&reference.unwrap()).unwrap();
    let req = RenderRequest { width: 128, height: 96, spp: 8, ..request(Format::Pfm) };
    let ours = read_pfm(&render_to_vec(&req, &RenderOptions::default()).unwrap().0).unwrap();
    let row_means = |img: &PfmImage| -> Vec<f32> {
        img.pixels
            .chunks(img.width)
            .map(|r| r.iter().map(|p| p[0] + p[1] + p[2]).sum::<f32>() / r.len() as f32)
            .collect()
    };
    // Low spp clamps more, so levels differ; the shape (correlation) does not.
    let corr = |a: &[f32], b: &[f32]| {
        let n = a.len() as f32;
        let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
        let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    let (a, b) = (row_means(&ours), row_means(&reference));
    let flipped: Vec<f32> = b.iter().rev().copied().collect();
    let (straight, upside_down) = (corr(&a, &b), corr(&a, &flipped));
    assert!(straight > 0.6 && upside_down < 0.3, "correlation {straight}, flipped {upside_down}");
}

#[test]
fn png_size_bound_holds_for_incompressible_rows() {
    use render::encode::RowEncoder;
    use std::io::Write;
    // Pseudo-random pixels do not compress: the bound must still hold.
    #[derive(Clone, Default)]
    struct Count(std::sync::Arc<std::sync::atomic::AtomicU64>);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (w, h) = (300u32, 200u32);
    let count = Count::default();
    let mut enc: Box<dyn RowEncoder> = render::encode::encoder(Format::Png, w, h, count.clone()).unwrap();
    let mut rng = render::rng::Erand48::from_words([1, 2, 3]);
    for _ in 0..h {
        let row: Vec<render::Rgb> =
            (0..w).map(|_| render::vec3::Vec3::new(rng.next_f64(), rng.next_f64(), rng.next_f64())).collect();
        enc.write_row(&row).unwrap();
    }
    enc.finish().unwrap();
    let n = count.0.load(std::sync::atomic::Ordering::Relaxed);
    let raw = u64::from(h) * (1 + 3 * u64::from(w));
    assert!(n > raw * 9 / 10, "the data really is incompressible ({n} of {raw})");
    assert!(n <= output_size(Format::Png, w, h).bound(), "{n} > bound");
}
