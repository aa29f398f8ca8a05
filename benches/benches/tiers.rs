//! One benchmark per Function Compute memory tier: the default engine on a rayon pool of ⌈vCPU⌉
//! threads (capped at this host's cores), at spp 4 and 16. `cargo run -p benches --bin report`
//! turns the results into projected FC wall times (see `benches::project`).

use benches::{TIER_SPP, TIERS};
use criterion::{Criterion, criterion_group, criterion_main};
use render::{EngineKind, Format, RenderOptions, RenderRequest, render_to_writer};
use std::time::Duration;

fn tiers(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("tier");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4));
    for tier in TIERS {
        let threads = tier.threads(cores);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for spp in TIER_SPP {
            let req = RenderRequest {
                width: tier.width,
                height: tier.height,
                spp,
                engine: EngineKind::DEFAULT,
                format: Format::Ppm,
                seed: 0,
                ..RenderRequest::default()
            };
            group.bench_function(format!("{}/spp{spp}", tier.name()), |b| {
                b.iter(|| {
                    let opts = RenderOptions { pool: Some(&pool), ..RenderOptions::default() };
                    render_to_writer(&req, &opts, std::io::sink()).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, tiers);
criterion_main!(benches);
