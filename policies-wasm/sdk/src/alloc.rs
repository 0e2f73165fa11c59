//! The guest's allocator: a bump allocator over a static arena, then over
//! memory grown in chunks.
//!
//! Every evaluation runs in a fresh instance that the host throws away, so
//! nothing allocated is ever reused and freeing is pointless. What matters is
//! not growing linear memory: each `memory.grow` costs the host an
//! `mprotect` on the pooled slot (and TLB shootdowns across its threads) to
//! make the new pages accessible and again to restore the guard when the slot
//! is reused. The arena lives in `.bss`, inside the module's initial memory,
//! so a typical evaluation never grows memory. One that outgrows it (a rule
//! scanning thousands of cluster objects) bumps on through memory grown
//! [`SPILL_CHUNK`] at a time: growing per allocation would spend a whole
//! 64 KiB page on every small one and hit the memory cap after a few
//! thousand.

// Natively the host's allocator serves; the region logic is still built
// there so its tests run.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use core::alloc::Layout;

/// Arena size: several times what a Calico rule needs for a 30 KB review.
#[cfg(target_arch = "wasm32")]
const ARENA_BYTES: usize = 2 << 20;
const WASM_PAGE: usize = 64 << 10;
/// Memory grown at a time once the arena is full (or the allocation's size,
/// when larger).
const SPILL_CHUNK: usize = 1 << 20;

/// A bump region `[next, end)` of addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Region {
    next: usize,
    end: usize,
}

impl Region {
    /// Carves `layout` out of the region, or `None` when it does not fit.
    fn bump(&mut self, layout: Layout) -> Option<usize> {
        let start = self.next.checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        (end <= self.end).then(|| {
            self.next = end;
            start
        })
    }

    /// Resizes the region's most recent allocation in place (a `Vec` or
    /// `String` being built), when it is that one and the new size fits.
    fn resize_last(&mut self, ptr: usize, old_size: usize, new_size: usize) -> bool {
        let fits = ptr.checked_add(new_size).is_some_and(|e| e <= self.end);
        if ptr + old_size == self.next && fits {
            self.next = ptr + new_size;
            return true;
        }
        false
    }

    /// Adds `[start, start + len)`, freshly grown memory: the region goes on
    /// into it when it is contiguous, and restarts there otherwise.
    fn extend(&mut self, start: usize, len: usize) {
        if start != self.end {
            self.next = start;
        }
        self.end = start + len;
    }
}

/// The pages to grow for `layout` once the arena is full.
fn spill_pages(layout: Layout) -> usize {
    let want = layout
        .size()
        .saturating_add(layout.align())
        .max(SPILL_CHUNK);
    want.div_ceil(WASM_PAGE)
}

#[cfg(target_arch = "wasm32")]
mod global {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    use super::{ARENA_BYTES, Region, WASM_PAGE, spill_pages};

    #[repr(C, align(16))]
    struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

    struct Bump {
        arena: Arena,
        /// The arena (set up on first use: its address is known only then),
        /// then the grown memory.
        regions: UnsafeCell<Option<[Region; 2]>>,
    }

    // SAFETY: wasm32 guests are single-threaded.
    unsafe impl Sync for Bump {}

    #[global_allocator]
    static ALLOCATOR: Bump = Bump {
        arena: Arena(UnsafeCell::new([0; ARENA_BYTES])),
        regions: UnsafeCell::new(None),
    };

    impl Bump {
        /// SAFETY: single-threaded, and no reference outlives the call.
        #[allow(clippy::mut_from_ref)]
        unsafe fn regions(&self) -> &mut [Region; 2] {
            // SAFETY: see the function's contract.
            let regions = unsafe { &mut *self.regions.get() };
            regions.get_or_insert_with(|| {
                let base = self.arena.0.get() as usize;
                [
                    Region {
                        next: base,
                        end: base + ARENA_BYTES,
                    },
                    Region::default(),
                ]
            })
        }
    }

    // SAFETY: single-threaded (wasm32 guests); every pointer handed out is
    // inside the arena or memory grown for it, aligned as asked, and never
    // handed out twice (a bump allocator; `dealloc` keeps the memory).
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded; the reference ends with this call.
            let [arena, spill] = unsafe { self.regions() };
            if let Some(p) = arena.bump(layout).or_else(|| spill.bump(layout)) {
                return p as *mut u8;
            }
            if layout.align() > WASM_PAGE {
                return core::ptr::null_mut();
            }
            let pages = spill_pages(layout);
            match core::arch::wasm32::memory_grow(0, pages) {
                usize::MAX => core::ptr::null_mut(),
                previous => {
                    spill.extend(previous * WASM_PAGE, pages * WASM_PAGE);
                    spill
                        .bump(layout)
                        .map_or(core::ptr::null_mut(), |p| p as *mut u8)
                }
            }
        }

        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: single-threaded; the reference ends before `alloc`.
            let [arena, spill] = unsafe { self.regions() };
            let (at, old) = (ptr as usize, layout.size());
            if arena.resize_last(at, old, new_size) || spill.resize_last(at, old, new_size) {
                return ptr;
            }
            if new_size <= old {
                return ptr;
            }
            // SAFETY: the layout is valid with the new size (GlobalAlloc contract).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: as for alloc.
            let new = unsafe { self.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both blocks are at least min(old, new) bytes and distinct.
                unsafe { core::ptr::copy_nonoverlapping(ptr, new, old.min(new_size)) };
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligned_until_full() {
        let mut r = Region { next: 1, end: 64 };
        assert_eq!(r.bump(layout(8, 8)), Some(8));
        assert_eq!(r.bump(layout(1, 1)), Some(16));
        assert_eq!(r.bump(layout(48, 16)), None, "32 + 48 > 64");
        assert_eq!(r.bump(layout(32, 16)), Some(32));
        assert_eq!(r.bump(layout(1, 1)), None);
        assert_eq!(Region::default().bump(layout(1, 1)), None);
    }

    #[test]
    fn only_the_last_allocation_grows_in_place() {
        let mut r = Region { next: 0, end: 100 };
        let a = r.bump(layout(10, 1)).unwrap();
        let b = r.bump(layout(10, 1)).unwrap();
        assert!(!r.resize_last(a, 10, 20), "not the last one");
        assert!(r.resize_last(b, 10, 90));
        assert_eq!(r.next, 100);
        assert!(!r.resize_last(b, 90, 91), "past the end");
    }

    #[test]
    fn grown_memory_continues_or_restarts_the_region() {
        let mut r = Region { next: 90, end: 100 };
        r.extend(100, 50);
        assert_eq!(
            r,
            Region { next: 90, end: 150 },
            "contiguous: nothing is lost"
        );
        r.extend(1000, 50);
        assert_eq!(
            r,
            Region {
                next: 1000,
                end: 1050
            }
        );
    }

    /// Many small allocations share a chunk: ten thousand objects of a
    /// lookup cost a few chunks, not a page each.
    #[test]
    fn small_allocations_share_a_chunk() {
        assert_eq!(spill_pages(layout(24, 8)), SPILL_CHUNK / WASM_PAGE);
        assert_eq!(spill_pages(layout(3 << 20, 8)), (3 << 20) / WASM_PAGE + 1);
        let mut r = Region::default();
        r.extend(0, spill_pages(layout(24, 8)) * WASM_PAGE);
        let fits = (0..10_000)
            .filter(|_| r.bump(layout(24, 8)).is_some())
            .count();
        assert_eq!(fits, 10_000);
    }
}
