//! Progressive renders: every frame byte for byte the one-shot render at its spp, in every
//! format, and the refusals.

use render::progressive::{passes, render_progressive, write_end, write_part};
use render::request::Param;
use render::{EngineKind, Format, Limits, RenderOptions, RenderRequest, RequestError, Scene, render_to_vec};

fn request(spp: u32, format: Format) -> RenderRequest {
    RenderRequest { width: 40, height: 30, spp, format, seed: 5, progressive: true, ..RenderRequest::default() }
}

/// Each frame's (spp, bytes).
fn frames(req: &RenderRequest) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let stats = render_progressive(&Scene::default(), req, &RenderOptions::default(), |f| {
        assert_eq!((f.pass, f.passes), (out.len() + 1, passes(req.samples_per_subpixel()).len()));
        out.push((f.spp, f.image.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(stats.effective_spp, req.effective_spp());
    out
}

fn one_shot(req: &RenderRequest, spp: u32) -> Vec<u8> {
    render_to_vec(&RenderRequest { spp, progressive: false, ..*req }, &RenderOptions::default()).unwrap().0
}

#[test]
fn every_frame_is_the_one_shot_render_at_its_spp() {
    for format in Format::ALL.iter().copied() {
        let req = request(36, format);
        let got = frames(&req);
        assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 8, 16, 32, 36], "{format}");
        for (spp, bytes) in &got {
            assert!(*bytes == one_shot(&req, *spp), "{format} frame at spp {spp} differs from the one-shot render");
        }
    }
}

#[test]
fn nee_frames_are_its_one_shot_renders_too() {
    let req = RenderRequest { engine: EngineKind::Nee, ..request(20, Format::Pfm) };
    let got = frames(&req);
    assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 8, 16, 20]);
    for (spp, bytes) in &got {
        assert!(*bytes == one_shot(&req, *spp), "nee frame at spp {spp} differs from the one-shot render");
    }
    let fast = RenderRequest { engine: EngineKind::Fast, ..req };
    assert!(got.last().unwrap().1 != one_shot(&fast, 20), "nee renders its own estimator");
}

#[test]
fn a_band_refines_too() {
    let req = RenderRequest { rows: Some("7-19".parse().unwrap()), ..request(12, Format::Pfm) };
    let got = frames(&req);
    assert_eq!(got.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 8, 12]);
    assert!(got.last().unwrap().1 == one_shot(&req, 12));
}

#[test]
fn the_writer_gets_one_part_per_frame() {
    let req = request(16, Format::Png);
    let (stream, _) = render_to_vec(&req, &RenderOptions::default()).unwrap();
    let mut want = Vec::new();
    for (spp, bytes) in frames(&req) {
        write_part(&mut want, Format::Png, spp, &bytes).unwrap();
    }
    write_end(&mut want).unwrap();
    assert!(stream == want);
    let text = String::from_utf8_lossy(&stream);
    assert_eq!(text.matches("--smallpt-frame\r\nContent-Type: image/png\r\n").count(), 3);
    assert!(text.contains("X-Render-Spp: 8\r\n") && text.ends_with("--smallpt-frame--\r\n"));
}

#[test]
fn refusals_name_the_parameter() {
    let l = Limits::DEFAULT;
    let q = |s: &str| RenderRequest::from_query(s, &l);
    assert!(q("progressive=1").unwrap().progressive);
    assert!(!q("progressive=0").unwrap().progressive);
    assert!(RenderRequest::from_json(br#"{"progressive": true}"#, &l).unwrap().progressive);
    for (bad, param) in [
        ("progressive=yes", "progressive"),
        ("progressive=1&engine=classic", "engine"),
        ("progressive=1&parts=2", "progressive"),
        ("progressive=1&width=4096&height=4096", "progressive"),
    ] {
        let e = q(bad).unwrap_err();
        assert_eq!(e.param(), param, "{bad}: {e}");
    }
    assert!(matches!(q("progressive=1&width=4096&height=4096"), Err(RequestError::ProgressiveTooLarge { .. })));
    // 1920×1080 fits the default bound, and its band of rows counts, not the whole height.
    q("progressive=1&width=1920&height=1080").unwrap();
    q("progressive=1&width=4096&height=4096&rows=0-100").unwrap();
    assert!(Param::Progressive.allowed(&l).contains("2796202 pixels"), "{}", Param::Progressive.allowed(&l));
    let classic = RenderRequest { engine: EngineKind::Classic, ..request(4, Format::Ppm) };
    assert!(render_progressive(&Scene::default(), &classic, &RenderOptions::default(), |_| Ok(())).is_err());
}

#[test]
fn a_cancelled_progressive_render_stops() {
    let opts = RenderOptions::default();
    let cancel = opts.cancel.clone();
    let mut seen = 0;
    let res = render_progressive(&Scene::default(), &request(64, Format::Ppm), &opts, |_| {
        seen += 1;
        cancel.cancel();
        Ok(())
    });
    assert!(matches!(res, Err(render::RenderError::Cancelled)), "{res:?}");
    assert_eq!(seen, 1, "no frame after the cancel");
}

/// Sums that cannot be allocated end the render with an error, not an abort of the process
/// (which would take every other render in the server with it). Here more than the address
/// space; an operator's `RENDER_MAX_PROGRESSIVE_BYTES` set past the machine's memory is refused
/// the same way by the kernel.
#[test]
fn sums_that_cannot_be_allocated_are_an_error() {
    let req = RenderRequest { width: 1 << 24, height: 1 << 24, ..request(4, Format::Ppm) };
    let got = render_progressive(&Scene::default(), &req, &RenderOptions::default(), |_| Ok(()));
    match got {
        Err(render::RenderError::OutOfMemory { bytes }) => assert_eq!(bytes, 96 << 48),
        other => panic!("{:?}", other.map(|s| s.pixels)),
    }
}
