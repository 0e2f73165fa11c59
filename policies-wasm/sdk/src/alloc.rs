//! The guest's allocator: a bump allocator over a static arena.
//!
//! Every evaluation runs in a fresh instance that the host throws away, so
//! nothing allocated is ever reused and freeing is pointless. What matters is
//! not growing linear memory: each `memory.grow` costs the host an
//! `mprotect` on the pooled slot (and TLB shootdowns across its threads) to
//! make the new pages accessible and again to restore the guard when the slot
//! is reused. The arena lives in `.bss`, inside the module's initial memory,
//! so a typical evaluation never grows memory; one that outgrows the arena
//! falls back to `memory.grow`, up to the host's memory cap.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// Arena size: several times what a Calico rule needs for a 30 KB review.
const ARENA_BYTES: usize = 2 << 20;
const WASM_PAGE: usize = 64 << 10;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

struct Bump {
    arena: Arena,
    /// Offset of the next free byte in the arena.
    next: UnsafeCell<usize>,
}

// SAFETY: wasm32 guests are single-threaded.
unsafe impl Sync for Bump {}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    arena: Arena(UnsafeCell::new([0; ARENA_BYTES])),
    next: UnsafeCell::new(0),
};

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; `next` is only touched here and in realloc.
        let next = unsafe { &mut *self.next.get() };
        let base = self.arena.0.get() as usize;
        let start = (base + *next).next_multiple_of(layout.align());
        let end = start + layout.size();
        if end <= base + ARENA_BYTES {
            *next = end - base;
            return start as *mut u8;
        }
        grow(layout)
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing the most recent allocation (a Vec or String being built)
        // extends it in place.
        // SAFETY: single-threaded; see alloc.
        let next = unsafe { &mut *self.next.get() };
        let base = self.arena.0.get() as usize;
        let (start, end) = (ptr as usize, ptr as usize + layout.size());
        if end == base + *next && start + new_size <= base + ARENA_BYTES {
            *next = start + new_size - base;
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the layout is valid with the new size (GlobalAlloc contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for alloc.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least min(old, new) bytes and distinct.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

/// Memory beyond the arena: whole pages from `memory.grow`, page-aligned.
fn grow(layout: Layout) -> *mut u8 {
    if layout.align() > WASM_PAGE {
        return core::ptr::null_mut();
    }
    let pages = layout.size().div_ceil(WASM_PAGE).max(1);
    match core::arch::wasm32::memory_grow(0, pages) {
        usize::MAX => core::ptr::null_mut(),
        previous => (previous * WASM_PAGE) as *mut u8,
    }
}
