//! The streaming driver: order, determinism, bounded memory, cancellation, progress.

use render::{
    CancelToken, EngineKind, Format, Progress, RenderError, RenderOptions, RenderRequest, Rgb, RowOrder, Scene,
};
use render::{render_rows, render_to_vec};
use std::time::{Duration, Instant};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn req(width: u32, height: u32, spp: u32, format: Format) -> RenderRequest {
    RenderRequest { width, height, spp, engine: EngineKind::Classic, format, seed: 0, ..RenderRequest::default() }
}

#[test]
fn same_bytes_with_one_and_two_threads_and_any_seed_changes_them() {
    let r = req(96, 64, 8, Format::Ppm);
    let (p1, p2) = (pool(1), pool(2));
    let one = render_to_vec(&r, &RenderOptions { pool: Some(&p1), ..Default::default() }).unwrap().0;
    let two = render_to_vec(&r, &RenderOptions { pool: Some(&p2), ..Default::default() }).unwrap().0;
    assert_eq!(one, two);
    let seeded = RenderRequest { seed: 777, ..r };
    let other = render_to_vec(&seeded, &RenderOptions { pool: Some(&p2), ..Default::default() }).unwrap().0;
    assert_ne!(one, other, "the seed must change the image");
    let again = render_to_vec(&seeded, &RenderOptions { pool: Some(&p1), ..Default::default() }).unwrap().0;
    assert_eq!(other, again);
}

#[test]
fn rows_arrive_in_order_in_either_direction() {
    let r = req(32, 40, 4, Format::Ppm);
    let p = pool(2);
    for (order, want) in
        [(RowOrder::TopDown, (0..40).collect::<Vec<u32>>()), (RowOrder::BottomUp, (0..40).rev().collect())]
    {
        let mut got = Vec::new();
        let opts = RenderOptions { pool: Some(&p), ..Default::default() };
        let stats = render_rows(&Scene::default(), &r, &opts, order, |row, px| {
            assert_eq!(px.len(), 32);
            got.push(row);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want);
        assert_eq!((stats.pixels, stats.effective_spp, stats.samples), (32 * 40, 4, 32 * 40 * 4));
        assert!(stats.segments > stats.samples, "every sample traces at least one segment");
    }
}

/// A sink that is slow on the first rows: every other row finishes meanwhile and must wait in
/// the window. Rows held back never exceed the window, however tall the image.
#[test]
fn reorder_window_stays_bounded() {
    let p = pool(2);
    for height in [100, 800] {
        let r = req(8, height, 4, Format::Ppm);
        let window = 6;
        let opts = RenderOptions { pool: Some(&p), window, ..Default::default() };
        let mut sunk = 0;
        let stats = render_rows(&Scene::default(), &r, &opts, RowOrder::TopDown, |row, _| {
            if row < 3 {
                std::thread::sleep(Duration::from_millis(100));
            }
            sunk += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(sunk, height);
        // The slow sink lets the workers run as far ahead as the window allows, and no further.
        assert_eq!(stats.max_held_rows, window as u32, "height {height}");
    }
}

#[test]
fn cancel_stops_a_large_render_promptly_with_an_error() {
    // 1024x768 at spp 4096 would take hours.
    let r = req(1024, 768, 4096, Format::Ppm);
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let p = pool(2);
    let started = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        c.cancel();
    });
    let opts = RenderOptions { pool: Some(&p), cancel, ..Default::default() };
    let res = render_rows(&Scene::default(), &r, &opts, RowOrder::TopDown, |_, _| Ok(()));
    assert!(matches!(res, Err(RenderError::Cancelled)), "{res:?}");
    // One pixel at spp 4096 is about 40 ms of work; a row would be 40 s.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn a_failing_sink_stops_the_render() {
    let r = req(64, 200, 4, Format::Ppm);
    let mut calls = 0;
    let res = render_rows(&Scene::default(), &r, &RenderOptions::default(), RowOrder::TopDown, |row, _| {
        calls += 1;
        if row == 3 { Err(std::io::Error::other("disk full")) } else { Ok(()) }
    });
    assert!(matches!(res, Err(RenderError::Io(_))), "{res:?}");
    assert_eq!(calls, 4, "no row reaches the sink after it failed");
}

#[test]
fn progress_is_observable_while_rendering() {
    let r = req(64, 120, 16, Format::Ppm);
    let progress = Progress::new();
    let opts = RenderOptions { progress: progress.clone(), ..Default::default() };
    let mut seen = Vec::new();
    render_rows(&Scene::default(), &r, &opts, RowOrder::TopDown, |_, _| {
        seen.push(progress.get());
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.first(), Some(&(0, 120)));
    assert_eq!(seen.last(), Some(&(119, 120)));
    assert_eq!(progress.get(), (120, 120));
}

#[test]
fn a_panicking_engine_sink_does_not_hang() {
    let r = req(16, 64, 4, Format::Ppm);
    let res = std::panic::catch_unwind(|| {
        render_rows(&Scene::default(), &r, &RenderOptions::default(), RowOrder::TopDown, |row, _: &[Rgb]| {
            if row == 5 {
                panic!("boom");
            }
            Ok(())
        })
    });
    assert!(res.is_err());
}

/// A scene the fast engine's tables cannot hold is an error from the render, not a panic; the
/// classic engine takes it.
#[test]
fn too_many_spheres_for_the_fast_engine_is_an_error() {
    let mut scene = Scene::default();
    while scene.spheres.len() <= render::engine::fast::MAX_SPHERES {
        let mut s = scene.spheres[scene.spheres.len() - 1];
        s.radius *= 0.5;
        scene.spheres.push(s);
    }
    let fast = RenderRequest { engine: EngineKind::Fast, ..req(8, 4, 4, Format::Ppm) };
    let err = render_rows(&scene, &fast, &RenderOptions::default(), RowOrder::TopDown, |_, _| Ok(())).unwrap_err();
    assert!(matches!(err, RenderError::Scene(_)), "{err:?}");
    assert!(err.to_string().contains("at most 16 spheres"), "{err}");
    render_rows(&scene, &req(8, 4, 4, Format::Ppm), &RenderOptions::default(), RowOrder::TopDown, |_, _| Ok(()))
        .unwrap();
}
