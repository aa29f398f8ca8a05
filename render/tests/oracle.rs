//! The classic engine against smallpt.cpp's own output, byte for byte.

use render::{EngineKind, Format, RenderOptions, RenderRequest, render_to_vec};
use std::io::Read;
use std::path::PathBuf;

fn reference(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        bytes
    }
}

fn classic_p3(width: u32, height: u32, spp: u32) -> Vec<u8> {
    let req = RenderRequest {
        width,
        height,
        spp,
        engine: EngineKind::Classic,
        format: Format::P3,
        seed: 0,
        ..RenderRequest::default()
    };
    render_to_vec(&req, &RenderOptions::default()).unwrap().0
}

fn assert_same(name: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let lo = first.saturating_sub(40);
        panic!(
            "{name}: differs from byte {first} (lengths {} vs {}):\n got  …{}\n want …{}",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[lo..(first + 40).min(got.len())]),
            String::from_utf8_lossy(&want[lo..(first + 40).min(want.len())]),
        );
    }
}

#[test]
fn oracle_64x48_4spp() {
    assert_same("64x48 spp 4", &classic_p3(64, 48, 4), &reference("smallpt-64x48-4spp.ppm"));
}

#[test]
fn oracle_64x48_8spp() {
    assert_same("64x48 spp 8", &classic_p3(64, 48, 8), &reference("smallpt-64x48-8spp.ppm"));
}

#[test]
fn oracle_160x120_8spp() {
    assert_same("160x120 spp 8", &classic_p3(160, 120, 8), &reference("smallpt-160x120-8spp.ppm"));
}

#[test]
fn oracle_1024x768_4spp() {
    assert_same("1024x768 spp 4", &classic_p3(1024, 768, 4), &reference("smallpt-1024x768-4spp.ppm.gz"));
}
