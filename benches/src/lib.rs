//! Shared pieces of the benchmarks: Function Compute's memory tiers, the model that projects a
//! tier's wall time from what one host can measure, and where criterion leaves its estimates.
#![warn(missing_docs)]

use std::path::PathBuf;

/// One FC 3.0 instance size: memory and vCPU (vCPU between ¼ and 1× the memory in GB).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tier {
    /// Memory in MB.
    pub memory_mb: u32,
    /// vCPU share.
    pub vcpu: f64,
    /// The render size benchmarked on this tier.
    pub width: u32,
    /// The render height benchmarked on this tier.
    pub height: u32,
}

impl Tier {
    /// The benchmark name, e.g. `512MB-0.35vCPU`.
    pub fn name(&self) -> String {
        let mem = if self.memory_mb >= 1024 && self.memory_mb.is_multiple_of(1024) {
            format!("{}GB", self.memory_mb / 1024)
        } else {
            format!("{}MB", self.memory_mb)
        };
        format!("{mem}-{}vCPU", self.vcpu)
    }

    /// Threads the benchmark uses: ⌈vCPU⌉, capped at the host's cores.
    pub fn threads(&self, host_cores: usize) -> usize {
        (self.vcpu.ceil() as usize).clamp(1, host_cores.max(1))
    }
}

/// The tiers benchmarked: fc3's default (0.35 vCPU / 512 MB) and the usual steps, each at a vCPU
/// share FC 3.0 allows for its memory (../shared/platforms.md §1.7). 128 MB renders a small image.
pub const TIERS: &[Tier] = &[
    Tier { memory_mb: 128, vcpu: 0.1, width: 256, height: 192 },
    Tier { memory_mb: 512, vcpu: 0.35, width: 1024, height: 768 },
    Tier { memory_mb: 1024, vcpu: 1.0, width: 1024, height: 768 },
    Tier { memory_mb: 2048, vcpu: 2.0, width: 1024, height: 768 },
    Tier { memory_mb: 4096, vcpu: 4.0, width: 1024, height: 768 },
    Tier { memory_mb: 8192, vcpu: 8.0, width: 1024, height: 768 },
];

/// The spp values each tier is benchmarked at.
pub const TIER_SPP: [u32; 2] = [4, 16];

/// Projects a tier's wall time from times measured on this host.
///
/// The model: FC enforces a fractional vCPU as a CFS quota, so a single-threaded render on
/// `v < 1` vCPU gets `v` of a core: `T = T1 / v`. With `v ≥ 1` the render runs ⌈v⌉ threads; each
/// thread beyond the first adds the parallel efficiency measured here between 1 and `n` threads,
/// `e = T1 / (n·Tn)`: `T = T1 / (1 + (v − 1)·e)`. Beyond the host's cores this is an extrapolation
/// (rendering rows is embarrassingly parallel, so `e` stays near 1 in practice).
pub fn project(vcpu: f64, t1: f64, tn: f64, n: usize) -> f64 {
    if vcpu <= 1.0 {
        t1 / vcpu
    } else {
        let e = if n > 1 { (t1 / (n as f64 * tn)).min(1.0) } else { 1.0 };
        t1 / (1.0 + (vcpu - 1.0) * e)
    }
}

/// Where criterion writes its results (`target/criterion`), found from this crate's location.
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The mean time in seconds criterion estimated for `group/bench`, if it has run.
pub fn criterion_mean(group: &str, bench: &str) -> Option<f64> {
    let path = criterion_dir().join(group).join(bench).join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(v["mean"]["point_estimate"].as_f64()? / 1e9)
}

/// The command line of a tool that writes an SVG: `[SVG]` and `--help`. A flag it does not know
/// is exit 2 with clap's message (`report --help` used to write the plot to a file named
/// `--help`).
pub fn svg_path(name: &'static str, about: &'static str, default: Option<&'static str>) -> Option<PathBuf> {
    let help = match default {
        Some(d) => format!("Where the SVG goes [default: {d}]"),
        None => "Where the SVG goes (none written without it)".to_string(),
    };
    let m = clap::Command::new(name)
        .about(about)
        .arg(clap::Arg::new("svg").value_name("SVG").help(help).value_parser(clap::value_parser!(PathBuf)))
        .get_matches();
    m.get_one::<PathBuf>("svg").cloned().or_else(|| default.map(PathBuf::from))
}

/// The environment variable `name` parsed, or `default` when it is unset; exit 2 naming it when
/// it is set and does not parse (it used to be the default, silently).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => default,
        Ok(v) => v.trim().parse().unwrap_or_else(|_| usage_error(&format!("{name}: cannot use `{v}`"))),
        Err(std::env::VarError::NotUnicode(v)) => usage_error(&format!("{name}: cannot use {v:?}")),
    }
}

/// Prints `why` and exits with code 2, as for a bad argument.
pub fn usage_error(why: &str) -> ! {
    eprintln!("error: {why}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_respect_fc3_ratio() {
        for t in TIERS {
            let gb = f64::from(t.memory_mb) / 1024.0;
            assert!(t.vcpu >= gb / 4.0 - 1e-9 && t.vcpu <= gb + 1e-9, "{}", t.name());
        }
        assert_eq!(TIERS[1].name(), "512MB-0.35vCPU");
        assert_eq!(TIERS[2].name(), "1GB-1vCPU");
    }

    #[test]
    fn projection_model() {
        // A quarter of a core takes four times as long; perfect scaling halves at 2 vCPU.
        assert_eq!(project(0.25, 1.0, 0.5, 2), 4.0);
        assert_eq!(project(1.0, 1.0, 0.5, 2), 1.0);
        assert_eq!(project(2.0, 1.0, 0.5, 2), 0.5);
        // 80 % efficiency: 2 threads take 0.625; 4 vCPU project to 1 / (1 + 3·0.8).
        assert!((project(4.0, 1.0, 0.625, 2) - 1.0 / 3.4).abs() < 1e-12);
    }
}
