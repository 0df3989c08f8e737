//! The shim's own heap: every allocation of the shim's Rust code comes from
//! here, never from the program's `malloc`.
//!
//! jemalloc, tcmalloc and mimalloc take pthread mutexes *inside* `malloc`.
//! Those calls reach the shim's hooks; a hook that then allocated through
//! the program's `malloc` would re-enter the allocator that holds its own
//! lock, and every jemalloc program would hang. So the shim has a heap of
//! its own: `dlmalloc` over `mmap` (no libc allocator below it), behind a
//! `sync::SpinLock`, never a pthread lock.
//!
//! Fork: the forking thread takes the heap's lock in the prepare handler and
//! releases it in the parent and the child, as glibc does for `malloc`, so a
//! child never inherits a heap another thread was in the middle of changing.

use crate::sync::SpinLock;
use core::alloc::{GlobalAlloc, Layout};
use dlmalloc::Dlmalloc;

pub struct ShimHeap(SpinLock<Dlmalloc>);

impl ShimHeap {
    const fn new() -> Self {
        ShimHeap(SpinLock::new(Dlmalloc::new()))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Dlmalloc) -> R) -> R {
        self.0.with(f)
    }

    /// Fork prepare: no other thread is inside the heap until the fork is
    /// over.
    pub fn fork_prepare(&self) {
        self.0.raw_lock();
    }

    /// Fork parent and child: the heap is free again.
    pub fn fork_done(&self) {
        // SAFETY: fork_prepare took it on this thread.
        unsafe { self.0.raw_unlock() };
    }
}

unsafe impl GlobalAlloc for ShimHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|h| h.malloc(layout.size(), layout.align()))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.with(|h| h.calloc(layout.size(), layout.align()))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.with(|h| h.free(ptr, layout.size(), layout.align()))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.with(|h| h.realloc(ptr, layout.size(), layout.align(), new_size))
    }
}

#[cfg_attr(not(test), global_allocator)]
pub static HEAP: ShimHeap = ShimHeap::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_allocates_frees_and_grows() {
        // SAFETY: layouts are valid and every block is freed with its own.
        unsafe {
            let l = Layout::from_size_align(100, 16).unwrap();
            let p = HEAP.alloc_zeroed(l);
            assert!(!p.is_null() && (p as usize).is_multiple_of(16));
            assert!((0..100).all(|i| *p.add(i) == 0));
            let q = HEAP.realloc(p, l, 1 << 20);
            assert!(!q.is_null());
            HEAP.dealloc(q, Layout::from_size_align(1 << 20, 16).unwrap());
        }
    }
}
