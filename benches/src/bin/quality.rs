//! `cargo run --release -p benches --bin quality [svg-path]`: quality per second, `nee` against
//! `fast`. Renders a converged reference (nee, 512×384 at `REF_SPP`, its own seed), then each
//! engine at doubling spp, timing each render on every core and measuring its RMSE against the
//! reference (linear values, what the PFM holds, after smallpt's clamp). Prints the table for
//! BENCHMARKS.md, the RMSE of both engines at equal wall time (interpolated on the log-log
//! curve), and writes the curves as SVG (default `docs/quality.svg`).
//!
//! Each point's time is the median of `QUALITY_RUNS` renders (default 3; on a shared VM single
//! renders move by 10–20 %), which must all give the same image.
//!
//! Environment: `QUALITY_SIZE=WxH` (default 512x384), `QUALITY_REF_SPP` (default 4096),
//! `QUALITY_MAX_SPP` (default 1024), `QUALITY_AT` (seconds to compare at, default 1),
//! `QUALITY_RUNS` (default 3).

use benches::{env_or, svg_path, usage_error};
use render::{EngineKind, Format, RenderOptions, RenderRequest, Rgb, RowOrder, Scene, render_rows};
use std::time::Instant;

/// A render of `engine` at `spp` and its wall time in seconds.
fn render(engine: EngineKind, width: u32, height: u32, spp: u32, seed: u32) -> (Vec<Rgb>, f64) {
    let req = RenderRequest { width, height, spp, engine, format: Format::Pfm, seed, ..RenderRequest::default() };
    let mut img = vec![Rgb::ZERO; (width * height) as usize];
    let w = width as usize;
    let start = Instant::now();
    render_rows(&Scene::default(), &req, &RenderOptions::default(), RowOrder::TopDown, |row, px| {
        img[row as usize * w..][..w].copy_from_slice(px);
        Ok(())
    })
    .expect("render");
    (img, start.elapsed().as_secs_f64())
}

/// [`render()`] `runs` times: the image (the same every time) and the median wall time.
fn median_render(engine: EngineKind, width: u32, height: u32, spp: u32, runs: usize) -> (Vec<Rgb>, f64) {
    let (img, t) = render(engine, width, height, spp, 0);
    let mut times = vec![t];
    for _ in 1..runs {
        let (again, t) = render(engine, width, height, spp, 0);
        assert!(again == img, "{engine} spp {spp}: a second render gave another image");
        times.push(t);
    }
    times.sort_by(f64::total_cmp);
    (img, times[times.len() / 2])
}

fn rmse(a: &[Rgb], b: &[Rgb]) -> f64 {
    let se: f64 = a.iter().zip(b).map(|(p, q)| (*p - *q).dot(*p - *q)).sum();
    (se / (3 * a.len()) as f64).sqrt()
}

/// One engine's curve: (seconds, spp, RMSE) per render.
type Curve = Vec<(f64, u32, f64)>;

/// `y` at `x` on the log-log line through the two neighbouring points of `points` whose `x`
/// values bracket it (in either order), if some do.
fn log_log(points: impl Iterator<Item = (f64, f64)>, x: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> = points.collect();
    points.windows(2).find(|w| (w[0].0 - x) * (w[1].0 - x) <= 0.0).map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let f = (x.ln() - x0.ln()) / (x1.ln() - x0.ln());
        (y0.ln() + f * (y1.ln() - y0.ln())).exp()
    })
}

/// RMSE at `t` seconds.
fn at_time(curve: &Curve, t: f64) -> Option<f64> {
    log_log(curve.iter().map(|&(t, _, e)| (t, e)), t)
}

/// Seconds to reach RMSE `e`.
fn time_to(curve: &Curve, e: f64) -> Option<f64> {
    log_log(curve.iter().map(|&(t, _, e)| (e, t)), e)
}

fn main() {
    let svg_path =
        svg_path("quality", "Quality per second: nee against fast (see the source's header)", Some("docs/quality.svg"))
            .expect("a default");
    let size: String = env_or("QUALITY_SIZE", "512x384".to_string());
    let (width, height): (u32, u32) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .unwrap_or_else(|| usage_error(&format!("QUALITY_SIZE: `{size}` is not WxH")));
    let (ref_spp, max_spp, at) =
        (env_or("QUALITY_REF_SPP", 4096u32), env_or("QUALITY_MAX_SPP", 1024u32), env_or("QUALITY_AT", 1.0));
    let runs = env_or("QUALITY_RUNS", 3usize).max(1);
    let threads = rayon::current_num_threads();
    eprintln!("reference: nee {width}×{height} spp {ref_spp}, seed 1, {threads} threads …");
    let (reference, t_ref) = render(EngineKind::Nee, width, height, ref_spp, 1);
    eprintln!("reference in {t_ref:.1} s");
    // Warm up the pool and the caches once before timing.
    render(EngineKind::Fast, width, height, 4, 0);

    println!("| engine | spp | wall time (median of {runs}) | M samples/s | RMSE vs reference |");
    println!("| --- | --- | --- | --- | --- |");
    let mut curves: Vec<(EngineKind, Curve)> = Vec::new();
    for engine in [EngineKind::Fast, EngineKind::Nee] {
        let mut curve = Curve::new();
        let mut spp = 4;
        while spp <= max_spp {
            let (img, t) = median_render(engine, width, height, spp, runs);
            let e = rmse(&img, &reference);
            let rate = f64::from(width * height) * f64::from(spp) / t / 1e6;
            println!("| {engine} | {spp} | {t:.3} s | {rate:.1} | {e:.4} |");
            curve.push((t, spp, e));
            spp *= 2;
        }
        curves.push((engine, curve));
    }
    let (fast, nee) = (at_time(&curves[0].1, at), at_time(&curves[1].1, at));
    match (fast, nee) {
        (Some(f), Some(n)) => {
            println!("\nAt {at} s: fast RMSE {f:.4}, nee RMSE {n:.4}: nee/fast = {:.3}", n / f);
        }
        _ => println!("\nAt {at} s: outside the measured times of one engine; raise QUALITY_MAX_SPP"),
    }
    // The time each engine needs for the RMSE nee reaches at `at` seconds.
    if let Some(target) = nee {
        match time_to(&curves[0].1, target) {
            Some(t) => println!("fast needs {t:.2} s for nee's RMSE at {at} s ({:.1}× the time)", t / at),
            None => println!("fast does not reach nee's RMSE at {at} s within spp {max_spp}"),
        }
    }
    std::fs::write(&svg_path, svg(&curves, width, height)).expect("write the SVG");
    eprintln!("wrote {}", svg_path.display());
}

/// RMSE against wall time, both axes logarithmic.
fn svg(curves: &[(EngineKind, Curve)], width: u32, height: u32) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 420.0, 70.0, 50.0, 40.0, 130.0);
    let points = curves.iter().flat_map(|(_, c)| c.iter());
    let (t_min, t_max) = points.clone().fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (e_min, e_max) = points.fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (lt0, lt1) = (t_min.log10().floor(), t_max.log10().ceil());
    let (le0, le1) = (e_min.log10().floor(), e_max.log10().ceil());
    let x = |t: f64| left + (t.log10() - lt0) / (lt1 - lt0) * (w - left - right);
    let y = |e: f64| h - bottom - (e.log10() - le0) / (le1 - le0) * (h - top - bottom);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="14">RMSE against a converged render, {width}×{height}, by wall time (log-log)</text>
"#
    );
    for d in (lt0 as i32)..=(lt1 as i32) {
        let t = 10f64.powi(d);
        s += &format!(
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{t} s</text>
"##,
            x(t),
            top,
            h - bottom,
            h - bottom + 18.0
        );
    }
    for d in (le0 as i32)..=(le1 as i32) {
        let e = 10f64.powi(d);
        s += &format!(
            r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#ddd"/><text x="{2}" y="{3}" text-anchor="end">{e}</text>
"##,
            y(e),
            w - right,
            left - 6.0,
            y(e) + 4.0
        );
    }
    for (i, (engine, curve)) in curves.iter().enumerate() {
        let color = ["#c0392b", "#2471a3"][i % 2];
        let pts: Vec<String> = curve.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2))).collect();
        s += &format!(r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in curve {
            s += &format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>spp {}</title></circle>"#,
                x(p.0),
                y(p.2),
                p.1
            );
        }
        let ly = top + 20.0 + 20.0 * i as f64;
        s += &format!(
            "\n<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{2}\" y=\"{3}\">{engine}</text>\n",
            w - right + 10.0,
            w - right + 35.0,
            w - right + 40.0,
            ly + 4.0
        );
    }
    s += &format!(
        r#"<text x="{0}" y="{1}" text-anchor="middle">wall time</text>
</svg>
"#,
        (left + w - right) / 2.0,
        h - 12.0
    );
    s
}
