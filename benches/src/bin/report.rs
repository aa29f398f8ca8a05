//! `cargo run -p benches --bin report [svg-path]`: after `cargo bench -p benches`, prints the
//! markdown tables for BENCHMARKS.md from criterion's estimates (projected FC wall time per tier,
//! engine ratio, HTTP overhead, peak memory) and writes a plot of time against tier as SVG.

use benches::{TIER_SPP, TIERS, Tier, criterion_dir, criterion_mean, project, svg_path};
use std::fmt::Write as _;

fn secs(t: Option<f64>) -> String {
    t.map_or("—".into(), |t| format!("{t:.3} s"))
}

fn main() {
    let svg_path =
        svg_path("report", "The BENCHMARKS.md tables from criterion's estimates, after `cargo bench -p benches`", None);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mean = |tier: &Tier, spp: u32| criterion_mean("tier", &format!("{}_spp{spp}", tier.name()));
    // Single- and multi-thread times at 1024×768 come from the 1-vCPU and 2-vCPU tiers.
    let by_vcpu = |v: f64| TIERS.iter().find(|t| t.vcpu == v && t.width == 1024);
    let memory: Option<serde_json::Value> =
        std::fs::read(criterion_dir().join("memory.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let peak_for = |w: u64| -> Option<f64> {
        let cases = memory.as_ref()?["cases"].as_array()?;
        cases
            .iter()
            .filter(|c| c["width"].as_u64() == Some(w))
            .filter_map(|c| c["peak_bytes"].as_f64())
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            .map(|b| b / f64::from(1 << 20))
    };

    println!(
        "| tier | size | threads here | spp 4 here | spp 16 here | projected FC spp 4 | projected FC spp 16 | peak heap (any format, any height, this width) | largest 4:3 image in 60 s at spp 4 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut plot = Vec::new();
    for tier in TIERS {
        let mut row = format!("| {} | {}×{} | {} |", tier.name(), tier.width, tier.height, tier.threads(cores));
        let mut projected = Vec::new();
        for spp in TIER_SPP {
            write!(row, " {} |", secs(mean(tier, spp))).unwrap();
        }
        for spp in TIER_SPP {
            let (t1, t2) = if tier.width == 1024 {
                (by_vcpu(1.0).and_then(|t| mean(t, spp)), by_vcpu(2.0).and_then(|t| mean(t, spp)))
            } else {
                (mean(tier, spp), None)
            };
            let p = t1.map(|t1| project(tier.vcpu, t1, t2.unwrap_or(t1), if t2.is_some() { cores.min(2) } else { 1 }));
            write!(row, " {} |", secs(p)).unwrap();
            projected.push(p);
        }
        let peak = peak_for(u64::from(tier.width.max(1024)));
        write!(row, " {} |", peak.map_or("—".into(), |m| format!("{m:.1} MiB"))).unwrap();
        let largest = projected[0].map(|t| {
            let pixels = 60.0 / t * f64::from(tier.width * tier.height);
            let h = (pixels * 3.0 / 4.0).sqrt().min(8192.0 * 3.0 / 4.0);
            format!("{}×{}", (h * 4.0 / 3.0) as u32, h as u32)
        });
        write!(row, " {} |", largest.unwrap_or("—".into())).unwrap();
        println!("{row}");
        if tier.width == 1024 {
            plot.push((tier.name(), projected[0], projected[1]));
        }
    }

    println!();
    for spp in [4, 16] {
        let c = criterion_mean("engine", &format!("classic_1024x768-spp{spp}"));
        let f = criterion_mean("engine", &format!("fast_1024x768-spp{spp}"));
        if let (Some(c), Some(f)) = (c, f) {
            println!("engine ratio at 1024×768 spp {spp}: classic {c:.3} s / fast {f:.3} s = {:.1}×", c / f);
        }
    }
    let http = criterion_mean("http", "server_1024x768-spp4");
    let local = criterion_mean("http", "in-process_1024x768-spp4");
    if let (Some(h), Some(l)) = (http, local) {
        println!("HTTP end to end {h:.3} s vs in-process {l:.3} s (separate runs): {:+.1} %", (h / l - 1.0) * 100.0);
    }
    if let Some(t) = criterion_mean("http", "ttfb_1024x768-spp4") {
        println!("time to first byte at 1024×768 spp 4: {:.1} ms", t * 1e3);
    }

    if let Some(path) = svg_path {
        std::fs::write(&path, svg(&plot)).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

/// A log-scale bar chart of projected FC wall time per tier at spp 4 and 16.
fn svg(rows: &[(String, Option<f64>, Option<f64>)]) -> String {
    let (w, h, left, bottom, top) = (640.0, 320.0, 60.0, 60.0, 30.0);
    let plot_h = h - bottom - top;
    let values: Vec<f64> = rows.iter().flat_map(|r| [r.1, r.2]).flatten().collect();
    let (lo, hi) = (
        values.iter().cloned().fold(f64::INFINITY, f64::min).log10().floor(),
        values.iter().cloned().fold(0.0, f64::max).log10().ceil(),
    );
    let y = |t: f64| top + plot_h * (1.0 - (t.log10() - lo) / (hi - lo).max(1.0));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">Projected FC wall time, 1024×768 (log scale)</text>
"#,
        w / 2.0
    );
    let mut d = lo;
    while d <= hi {
        let t = 10f64.powf(d);
        let (x2, yt, lx, ly) = (w - 10.0, y(t), left - 5.0, y(t) + 4.0);
        writeln!(s, r##"<line x1="{left}" x2="{x2}" y1="{yt:.1}" y2="{yt:.1}" stroke="#ddd"/><text x="{lx}" y="{ly:.1}" text-anchor="end">{t} s</text>"##).unwrap();
        d += 1.0;
    }
    let slot = (w - left - 10.0) / rows.len().max(1) as f64;
    for (i, (name, a, b)) in rows.iter().enumerate() {
        let x = left + slot * i as f64;
        for (j, (v, colour)) in [(a, "#4a7ebb"), (b, "#e0823d")].into_iter().enumerate() {
            if let Some(v) = v {
                let bx = x + slot * (0.15 + 0.35 * j as f64);
                writeln!(s, r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{v:.3} s</title></rect>"#, y(*v), slot * 0.33, h - bottom - y(*v)).unwrap();
            }
        }
        writeln!(s, r#"<text x="{:.1}" y="{}" text-anchor="middle">{name}</text>"#, x + slot / 2.0, h - bottom + 18.0)
            .unwrap();
    }
    let (ky, ty, t1, k2, t2) = (h - 24.0, h - 14.0, left + 16.0, left + 80.0, left + 96.0);
    writeln!(s, r##"<rect x="{left}" y="{ky}" width="12" height="12" fill="#4a7ebb"/><text x="{t1}" y="{ty}">spp 4</text><rect x="{k2}" y="{ky}" width="12" height="12" fill="#e0823d"/><text x="{t2}" y="{ty}">spp 16</text>"##).unwrap();
    s.push_str("</svg>\n");
    s
}
