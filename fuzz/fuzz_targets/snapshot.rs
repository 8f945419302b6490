//! Fuzzing the snapshot loader: any bytes, and any bytes behind a valid
//! checksum, must be refused with an error or give an allocator that
//! verifies and keeps working; never a panic or a crash.
//!
//! Run: `cargo fuzz run snapshot -- -max_total_time=600` (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagealloc::PageAlloc;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = PageAlloc::from_bytes(data);
    // The same bytes with the checksum made right, so that the loader's
    // structural checks are what stands between them and the allocator.
    let mut fixed = b"PAGEALC\0\x01\0\0\0".to_vec();
    fixed.extend_from_slice(data);
    let sum = fnv1a(&fixed);
    fixed.extend_from_slice(&sum.to_le_bytes());
    if let Ok(mut pa) = PageAlloc::from_bytes(&fixed) {
        pa.verify().expect("a loaded snapshot verifies");
        if let Ok(Some(a)) = pa.alloc(1) {
            pa.free(a, 1).expect("free what was allocated");
        }
        pa.verify().expect("still verifies");
    }
});
