//! Every engine on the same request, on every core: the renderer's headline ratio.

use criterion::{Criterion, criterion_group, criterion_main};
use render::{EngineKind, Format, RenderOptions, RenderRequest, render_to_writer};
use std::time::Duration;

fn engines(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(10));
    for &engine in EngineKind::ALL {
        for spp in [4, 16] {
            let req = RenderRequest {
                width: 1024,
                height: 768,
                spp,
                engine,
                format: Format::Ppm,
                seed: 0,
                ..RenderRequest::default()
            };
            group.bench_function(format!("{engine}/1024x768-spp{spp}"), |b| {
                b.iter(|| render_to_writer(&req, &RenderOptions::default(), std::io::sink()).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
