//! Sets `RENDER_SOURCE_HASH`: a 64-bit FNV-1a hash of this crate's sources (paths and contents,
//! in path order). Two builds of the same sources render the same bytes (given the same SIMD
//! arithmetic); a fan-out compares it across its workers so that it never merges bands rendered
//! by two versions of the engines.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).expect("src").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = f.to_string_lossy().into_owned().into_bytes().into_iter().chain(std::fs::read(&f).expect("source"));
        for b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=RENDER_SOURCE_HASH={hash:016x}");
}
