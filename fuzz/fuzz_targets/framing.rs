//! The framing layer on arbitrary bytes fed in arbitrary pieces: never a panic, never a byte
//! lost, added or moved (a refused head is only ever spoiled in place), and the same output
//! whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::framing::fuzz_feed;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else { return };
    let (whole, _) = fuzz_feed(stream, stream.len().max(1));
    let (pieces, _) = fuzz_feed(stream, usize::from(step).max(1));
    assert_eq!(whole.len(), stream.len());
    assert_eq!(whole, pieces, "the output depends on how the bytes arrived");
    for (a, b) in whole.iter().zip(stream) {
        assert!(a == b || *a == 1, "a byte changed other than by spoiling");
    }
});
