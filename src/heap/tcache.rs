//! Per-thread page caches of a [`Heap`](super::Heap) (Go's per-P
//! `pageCache`, with threads in the place of Ps).
//!
//! Each thread that allocates small spans from a heap owns one [`Slot`]: a
//! [`LocalCache`] (a [`PageCache`] block of up to 64 free pages taken from
//! the page allocator under the heap lock, plus `handed`, the pages of that
//! block it has handed out and not had back). The owner allocates from its slot and frees spans
//! it handed out back into it under the slot's own mutex, which no other
//! thread takes on its hot path: two threads allocating and freeing small
//! spans never wait for each other or for the heap lock.
//!
//! Every page of a live slot's block is in one of three states:
//!
//! - free in the cache (`local.cache.cache`): in use to the page allocator, owned
//!   by the slot;
//! - handed out (`handed`): in use to the page allocator, owned by a caller,
//!   and when freed it goes back to the cache;
//! - neither: a page that was not free when the block was taken (another
//!   span's), which the page allocator manages as usual.
//!
//! Why the handed-out set: a free must know where its pages go. A span the
//! slot handed out returns to the cache; anything else goes to the page
//! allocator. Freeing a handed-out page into the page allocator while the
//! slot still counted it as handed out would let the slot take it back a
//! second time (a double free that succeeds), and two owners would share a
//! page. So a free of a live slot's pages by any other thread (which cannot
//! take the slot's lock on its fast path) goes through the heap lock, which
//! finds the slot among the heap's live slots and returns the pages to it.
//!
//! A slot is retired, its free pages flushed back to the page allocator and
//! its handed-out pages turned into ordinary in-use pages, when its owner
//! needs a new block, when the heap scavenges (so that every free page can be
//! released), and when its thread exits.
//!
//! Locks: the heap lock, then slot locks; a slot's owner takes only its
//! slot's lock on the fast path and never takes the heap lock while holding
//! it, so the order holds everywhere.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::cache::{LocalCache, PageCache};

use super::Shared;

/// One thread's cache of one heap.
#[derive(Default)]
pub(crate) struct Slot(Mutex<SlotState>);

impl Slot {
    pub(crate) fn new(cache: PageCache) -> Slot {
        Slot(Mutex::new(SlotState {
            live: true,
            local: LocalCache::from(cache),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Nothing under a slot lock panics; a poisoned lock's state is as
        // consistent as the last completed operation left it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A slot's state. Invariant: when `!live`, `local` is empty.
#[derive(Default)]
pub(crate) struct SlotState {
    /// Whether the heap still counts this slot among its live ones.
    pub(crate) live: bool,
    pub(crate) local: LocalCache,
}

impl SlotState {
    /// Takes back pages this slot handed out, if it is live and every page
    /// of `mask` is handed out. O(1).
    #[inline]
    pub(crate) fn give_back(&mut self, mask: u64) -> bool {
        self.live && self.local.give_back(mask)
    }
}

/// A thread's slot for one heap. Dropped when the thread exits (or the entry
/// is pruned): the slot is then retired, if the heap is still alive.
struct Local {
    heap: Weak<Shared>,
    slot: Arc<Slot>,
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(shared) = self.heap.upgrade() {
            shared.retire_slot(&self.slot);
        }
    }
}

thread_local! {
    /// This thread's slots, one per heap it allocated small spans from.
    static LOCAL: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

/// This thread's entry for the heap `shared` among `locals`.
#[inline]
fn entry<'a>(locals: &'a mut [Local], shared: &Arc<Shared>) -> Option<&'a mut Local> {
    locals
        .iter_mut()
        .find(|l| std::ptr::eq(l.heap.as_ptr(), Arc::as_ptr(shared)))
}

/// Runs `f` on this thread's slot for the heap `shared`, if it has one;
/// `None` too when the thread's storage is being torn down or already in
/// use. (No reference count changes hands: this is the fast path.)
#[inline]
pub(crate) fn with_current<R>(shared: &Arc<Shared>, f: impl FnOnce(&Slot) -> R) -> Option<R> {
    LOCAL
        .try_with(|v| {
            let mut v = v.try_borrow_mut().ok()?;
            entry(&mut v, shared).map(|l| f(&l.slot))
        })
        .ok()
        .flatten()
}

/// This thread's slot for the heap `shared`, if it has one.
pub(crate) fn current(shared: &Arc<Shared>) -> Option<Arc<Slot>> {
    LOCAL
        .try_with(|v| {
            let mut v = v.try_borrow_mut().ok()?;
            entry(&mut v, shared).map(|l| Arc::clone(&l.slot))
        })
        .ok()
        .flatten()
}

/// Makes `slot` this thread's slot for `shared`. Returns `false` (and keeps
/// nothing) when the thread's storage is being torn down; the caller must
/// then retire the slot itself.
pub(crate) fn set_current(shared: &Arc<Shared>, slot: Arc<Slot>) -> bool {
    let mut slot = Some(slot);
    let kept = LOCAL.try_with(|v| {
        let Ok(mut v) = v.try_borrow_mut() else {
            return false;
        };
        // Entries of heaps that are gone have nothing to retire. (The weak
        // reference keeps the heap's allocation, so a new heap never reuses
        // a dead one's address while an entry names it.)
        let dead: Vec<Local> = {
            let (live, dead) = std::mem::take(&mut *v)
                .into_iter()
                .partition(|l| l.heap.strong_count() > 0);
            *v = live;
            dead
        };
        match entry(&mut v, shared) {
            // Replacing the field, not the entry, retires nothing here: the
            // caller already retired the old slot under the heap lock.
            Some(l) => l.slot = slot.take().expect("set once"),
            None => v.push(Local {
                heap: Arc::downgrade(shared),
                slot: slot.take().expect("set once"),
            }),
        }
        drop(v);
        drop(dead);
        true
    });
    kept.unwrap_or(false)
}
