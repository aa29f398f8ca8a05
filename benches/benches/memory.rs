//! Peak heap per render size and format, from a counting global allocator: streamed output keeps
//! memory flat in image height. Prints a table and saves `target/criterion/memory.json` for the
//! report. (A plain harness: criterion measures time, not bytes.)

use render::{EngineKind, Format, RenderOptions, RenderRequest, render_to_writer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const WIDTHS: [u32; 2] = [1024, 4096];
const HEIGHTS: [u32; 3] = [64, 768, 4096];

fn case_name(format: Format, w: u32, h: u32) -> String {
    format!("memory/{format}/{w}x{h}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: Vec<(Format, u32, u32)> = Format::ALL
        .iter()
        .flat_map(|&f| WIDTHS.iter().flat_map(move |&w| HEIGHTS.iter().map(move |&h| (f, w, h))))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (f, w, h) in &cases {
            println!("{}: benchmark", case_name(*f, *w, *h));
        }
        return;
    }
    // cargo bench passes `--bench` and maybe a filter: run the cases whose name contains it.
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_default();
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let mut rows = Vec::new();
    println!("| format | size | peak heap during render |");
    println!("| --- | --- | --- |");
    for (format, w, h) in cases {
        let name = case_name(format, w, h);
        if !name.contains(&filter) {
            continue;
        }
        let req = RenderRequest {
            width: w,
            height: h,
            spp: 4,
            engine: EngineKind::DEFAULT,
            format,
            seed: 0,
            ..RenderRequest::default()
        };
        let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        render_to_writer(&req, &opts, std::io::sink()).unwrap();
        let peak = PEAK.load(Ordering::Relaxed) - base;
        println!("| {format} | {w}×{h} | {:.2} MiB |", peak as f64 / (1 << 20) as f64);
        rows.push(
            serde_json::json!({"name": name, "format": format.name(), "width": w, "height": h, "peak_bytes": peak}),
        );
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l[6..].trim().to_string()));
    println!("peak RSS of the whole bench process: {}", rss.as_deref().unwrap_or("unknown"));
    let dir = benches::criterion_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let out = serde_json::json!({"cases": rows, "vm_hwm": rss});
    std::fs::write(dir.join("memory.json"), serde_json::to_vec_pretty(&out).unwrap()).unwrap();
}
