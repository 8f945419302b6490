//! The Heap under the standard allocation traits: `Allocator for &Heap`
//! (feature `allocator-api2`) and `LargeAlloc` as a `GlobalAlloc`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;

use pagealloc::{Heap, LargeAlloc, PAGE_SIZE};

const P: usize = PAGE_SIZE as usize;

#[cfg(feature = "allocator-api2")]
mod api2 {
    use super::*;
    use allocator_api2::alloc::Allocator;
    use allocator_api2::vec::Vec;

    #[test]
    fn page_multiples_exactly_others_rounded_up() {
        let heap = Heap::new(1 << 30).unwrap();
        let a = &heap;
        for (size, pages) in [(1, 1), (P, 1), (P + 1, 2), (3 * P, 3), (100_000, 13)] {
            let l = Layout::from_size_align(size, 8).unwrap();
            let b = a.allocate(l).unwrap();
            assert_eq!(b.len(), pages * P, "size {size}");
            assert_eq!(b.as_ptr().cast::<u8>() as usize % P, 0);
            assert!(heap.contains(b.as_ptr().cast()));
            assert_eq!(heap.stats().in_use, (pages * P) as u64);
            // SAFETY: allocated above with `l`.
            unsafe { a.deallocate(b.cast(), l) };
            assert_eq!(heap.stats().in_use, 0);
        }
        // Zero-sized: dangling, no page.
        let z = a.allocate(Layout::from_size_align(0, 64).unwrap()).unwrap();
        assert_eq!((z.len(), z.as_ptr().cast::<u8>() as usize), (0, 64));
        // Alignment above a page is refused, up to a page served.
        assert!(a
            .allocate(Layout::from_size_align(P, 2 * P).unwrap())
            .is_err());
        let l = Layout::from_size_align(P, P).unwrap();
        let b = a.allocate(l).unwrap();
        unsafe { a.deallocate(b.cast(), l) };
        heap.verify().unwrap();
    }

    #[test]
    fn zeroed_memory_is_zero_after_reuse() {
        let heap = Heap::new(1 << 30).unwrap();
        let l = Layout::from_size_align(64 * P, 8).unwrap();
        let b = (&heap).allocate(l).unwrap();
        // SAFETY: 64 pages of ours.
        unsafe { std::ptr::write_bytes(b.as_ptr().cast::<u8>(), 0xAB, l.size()) };
        unsafe { (&heap).deallocate(b.cast(), l) };
        let z = (&heap).allocate_zeroed(l).unwrap();
        assert_eq!(
            z.as_ptr().cast::<u8>(),
            b.as_ptr().cast::<u8>(),
            "first fit reuses the pages"
        );
        // SAFETY: 64 pages of ours, initialized (zeroed).
        let s = unsafe { std::slice::from_raw_parts(z.as_ptr().cast::<u8>(), l.size()) };
        assert!(s.iter().all(|&x| x == 0));
        unsafe { (&heap).deallocate(z.cast(), l) };
    }

    #[test]
    fn a_vec_grows_in_place_and_shrinks() {
        let heap = Heap::new(1 << 30).unwrap();
        // 32 pages: a span of the page allocator (fewer than 16 come from
        // the thread's page cache, whose next pages are the cache's).
        let mut v: Vec<u8, &Heap> = Vec::with_capacity_in(32 * P, &heap);
        v.extend(std::iter::repeat_n(7u8, 32 * P));
        let first = v.as_ptr();
        // Nothing follows it: doubling stays where it is, and keeps the data.
        v.reserve_exact(32 * P);
        assert_eq!(v.as_ptr(), first);
        assert_eq!(heap.stats().in_use, (64 * P) as u64);
        assert!(v.iter().all(|&x| x == 7));
        // A block right after it forces a move, which copies.
        let bl = Layout::from_size_align(32 * P, 8).unwrap();
        let blocker = (&heap).allocate(bl).unwrap();
        v.resize(64 * P, 9);
        v.reserve_exact(64 * P);
        assert_ne!(v.as_ptr(), first);
        assert!(v[..32 * P].iter().all(|&x| x == 7) && v[32 * P..].iter().all(|&x| x == 9));
        v.truncate(16 * P);
        v.shrink_to_fit();
        assert_eq!(
            heap.stats().in_use,
            (48 * P) as u64,
            "16 pages of vec, 32 of blocker"
        );
        unsafe { (&heap).deallocate(blocker.cast(), bl) };
        drop(v);
        assert_eq!(heap.stats().in_use, 0);
        heap.verify().unwrap();
    }

    #[test]
    fn a_vec_of_64_mib_grown_and_dropped_in_a_loop_reuses_its_pages() {
        let heap = Heap::new(1 << 30).unwrap();
        let mut base = None;
        for round in 0..8 {
            let mut v: Vec<u64, &Heap> = Vec::new_in(&heap);
            v.resize((64 << 20) / 8, round);
            assert_eq!(
                *base.get_or_insert(v.as_ptr() as usize),
                v.as_ptr() as usize
            );
            assert_eq!(v[v.len() - 1], round);
        }
        let st = heap.stats();
        assert_eq!(st.in_use, 0);
        assert!(st.retained <= 2 * (64 << 20) + (4 << 20), "{st:?}");
    }

    #[test]
    fn the_heap_is_shared_across_threads() {
        let heap = Heap::new(1 << 30).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let heap = &heap;
                s.spawn(move || {
                    for i in 0..200usize {
                        let mut v: Vec<u8, &Heap> = Vec::with_capacity_in((i % 40 + 1) * P, heap);
                        v.resize(v.capacity(), t);
                        assert!(v.iter().all(|&x| x == t));
                    }
                });
            }
        });
        assert_eq!(heap.stats().in_use, 0);
        heap.verify().unwrap();
    }
}

#[test]
fn large_alloc_routes_by_size_and_by_address() {
    static A: LargeAlloc<System> = LargeAlloc::new(System, 64 << 10, 1 << 30);
    assert!(
        A.heap().is_none(),
        "no heap before the first large allocation"
    );
    let small = Layout::from_size_align(1000, 8).unwrap();
    let large = Layout::from_size_align(100_000, 8).unwrap();
    let huge_align = Layout::from_size_align(100_000, 2 * P).unwrap();
    // SAFETY: each block is freed below with its own layout.
    unsafe {
        let s = A.alloc(small);
        assert!(A.heap().is_none());
        let l = A.alloc(large);
        let h = A.heap().expect("the heap exists now");
        assert!(h.contains(l) && !h.contains(s));
        assert_eq!(h.stats().in_use, 13 * PAGE_SIZE);
        let ha = A.alloc(huge_align);
        assert!(
            !h.contains(ha) && ha as usize % (2 * P) == 0,
            "alignment above a page: System"
        );
        let z = A.alloc_zeroed(large);
        assert!(std::slice::from_raw_parts(z, large.size())
            .iter()
            .all(|&x| x == 0));
        std::ptr::write_bytes(l, 1, large.size());
        // realloc in place (nothing after l but z? z follows it: moved) keeps the data.
        let l2 = A.realloc(l, large, 300_000);
        assert!(h.contains(l2));
        assert!(std::slice::from_raw_parts(l2, large.size())
            .iter()
            .all(|&x| x == 1));
        // A small block moved up past the threshold lands in the heap.
        std::ptr::write_bytes(s, 5, small.size());
        let s2 = A.realloc(s, small, 200_000);
        assert!(h.contains(s2));
        assert!(std::slice::from_raw_parts(s2, small.size())
            .iter()
            .all(|&x| x == 5));
        // Shrinking a heap block frees its tail pages in place.
        let l3 = A.realloc(l2, Layout::from_size_align(300_000, 8).unwrap(), 9000);
        assert_eq!(l3, l2);
        A.dealloc(l3, Layout::from_size_align(9000, 8).unwrap());
        A.dealloc(s2, Layout::from_size_align(200_000, 8).unwrap());
        A.dealloc(z, large);
        A.dealloc(ha, huge_align);
        assert_eq!(h.stats().in_use, 0);
        h.verify().unwrap();
    }
}

#[test]
fn grow_in_place_only_over_free_grown_pages() {
    let heap = Heap::new(1 << 30).unwrap();
    let a = heap.alloc(20, false).unwrap();
    let b = heap.alloc(20, false).unwrap();
    assert!(!heap.grow_in_place(a, 20, 21).unwrap(), "b follows a");
    assert!(heap.grow_in_place(b, 20, 100).unwrap());
    assert_eq!(heap.stats().in_use, 120 * PAGE_SIZE);
    // Past what the heap has grown (one 64 MiB arena): refused, unchanged.
    assert!(!heap.grow_in_place(b, 100, 9000).unwrap());
    assert!(heap.grow_in_place(b, 100, 50).is_err());
    heap.free(b, 100).unwrap();
    heap.free(a, 20).unwrap();
    assert_eq!(heap.stats().in_use, 0);
    heap.verify().unwrap();
    let _ = NonNull::<u8>::dangling();
}
