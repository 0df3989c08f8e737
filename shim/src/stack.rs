//! Stack capture (slow paths only) and the module table that lets the
//! analyzer symbolise return addresses offline.

use crate::sync::SpinLock;
use crate::thread::mix;
use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub const MAX_FRAMES: usize = 64;

/// A captured stack: return addresses, innermost first, shim frames removed.
pub struct Stack {
    pub frames: [u64; MAX_FRAMES],
    pub len: usize,
}

impl Stack {
    pub fn frames(&self) -> &[u64] {
        &self.frames[..self.len]
    }

    /// Content hash; the stack's id in the trace.
    pub fn id(&self) -> u64 {
        self.frames()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325, |h, &f| mix(h, f))
            | 1
    }
}

/// Captures the current stack, dropping the shim's own frames: by the
/// shim's own unwinder where it can (see `unwind`), else by libgcc's.
pub fn capture(depth: usize) -> Stack {
    let (lo, hi) = shim_range();
    let mut st = Stack {
        frames: [0; MAX_FRAMES],
        len: 0,
    };
    let depth = depth.min(MAX_FRAMES);
    if let Some(n) = crate::unwind::capture(&mut st.frames[..depth], lo, hi) {
        st.len = n;
        return st;
    }
    // SAFETY: libgcc's unwinder is thread-safe; the shim's busy flag keeps
    // its own lock hooks from recording while the unwinder takes its locks.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as u64;
            if ip == 0 {
                return false;
            }
            if ip >= lo && ip < hi {
                return true; // a frame of the shim (or of the unwinder in it)
            }
            st.frames[st.len] = ip;
            st.len += 1;
            st.len < depth
        });
    }
    st
}

static SHIM_LO: AtomicU64 = AtomicU64::new(0);
static SHIM_HI: AtomicU64 = AtomicU64::new(0);

/// The address range of the shim's own loaded object (computed at start-up,
/// before any fork).
pub fn shim_range() -> (u64, u64) {
    let hi = SHIM_HI.load(Ordering::Relaxed);
    if hi != 0 {
        return (SHIM_LO.load(Ordering::Relaxed), hi);
    }
    let me = shim_range as *const () as u64;
    for m in modules() {
        if m.segments.iter().any(|&(s, e)| me >= s && me < e) {
            let lo = m.segments.iter().map(|s| s.0).min().unwrap_or(0);
            let hi = m.segments.iter().map(|s| s.1).max().unwrap_or(0);
            SHIM_LO.store(lo, Ordering::Relaxed);
            SHIM_HI.store(hi, Ordering::Relaxed);
            return (lo, hi);
        }
    }
    (0, 0)
}

/// One loaded ELF object.
#[derive(Clone)]
pub struct Module {
    pub path: String,
    pub base: u64,
    pub segments: Vec<(u64, u64)>,
    /// Its program headers in memory, as the loader lists them: a fork
    /// child builds its unwinder from them without asking the loader.
    pub phdr: usize,
    pub phnum: u16,
}

impl Module {
    /// The object the loader lists with load bias `bias`, name `name` (null
    /// or empty: the main program) and program headers `phdr`, `phnum`:
    /// from `dl_iterate_phdr`, or from the loader's own entry in a fork
    /// child.
    ///
    /// # Safety
    /// `name` is null or a NUL-terminated string, and `phdr` points at
    /// `phnum` program headers, all of a loaded object.
    pub unsafe fn of_loaded(
        bias: u64,
        name: *const core::ffi::c_char,
        phdr: *const libc::Elf64_Phdr,
        phnum: u16,
    ) -> Module {
        let name = if name.is_null() {
            c""
        } else {
            // SAFETY: as the caller promises.
            unsafe { CStr::from_ptr(name) }
        };
        let path = if name.is_empty() {
            // The main program: its loader entry has no name.
            std::fs::read_link("/proc/self/exe")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            name.to_string_lossy().into_owned()
        };
        // SAFETY: as the caller promises.
        let phdrs = unsafe { core::slice::from_raw_parts(phdr, phnum as usize) };
        let segments = phdrs
            .iter()
            .filter(|p| p.p_type == libc::PT_LOAD)
            .map(|p| (bias + p.p_vaddr, bias + p.p_vaddr + p.p_memsz))
            .collect();
        Module {
            path,
            base: bias,
            segments,
            phdr: phdr as usize,
            phnum,
        }
    }
}

/// The loader's `dlpi_adds`/`dlpi_subs` at the last snapshot: the module
/// table needs writing again only when they change.
static LAST_ADDS: AtomicU64 = AtomicU64::new(u64::MAX);
static LAST_SUBS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The module list as the parent saw it at the last fork, for a fork child
/// until it execs: the child must not call `dl_iterate_phdr`, whose lock
/// another thread of the parent may have held at the fork (a `dlopen`, an
/// unwinder) and which then stays locked in the child for ever.
/// With the loader's counters it was taken at: it lists at least the
/// objects they count.
static FORK_SNAPSHOT: SpinLock<(Vec<Module>, (u64, usize))> =
    SpinLock::new((Vec::new(), (u64::MAX, usize::MAX)));
static IN_FORK_CHILD: AtomicBool = AtomicBool::new(false);

/// Fork prepare: brings the snapshot up to date and holds it until the
/// child and the parent are apart, so the child gets a whole one. A fork
/// child that forks again passes its own on, asking the loader nothing.
pub fn fork_prepare() {
    // Before the snapshot is looked at: a dlclose begun after this may
    // have unmapped an object it lists.
    UNLOADS_AT_PREPARE.store(UNLOADS_BEGUN.load(Ordering::SeqCst), Ordering::SeqCst);
    if !in_fork_child() {
        // The counters before the list: an object loaded in between is
        // listed and not counted, and the next fork takes it again.
        let counters = loader_counters();
        if FORK_SNAPSHOT.with(|s| s.1 != counters || s.0.is_empty()) {
            let now = (modules(), counters);
            let old = FORK_SNAPSHOT.with(|s| core::mem::replace(s, now));
            drop(old);
        }
    }
    FORK_SNAPSHOT.raw_lock();
}

/// Fork parent: the snapshot is free again.
pub fn fork_parent() {
    // SAFETY: fork_prepare left it locked on this thread.
    unsafe { FORK_SNAPSHOT.raw_unlock() };
}

/// Fork child: modules come from the snapshot until exec.
pub fn fork_child() {
    IN_FORK_CHILD.store(true, Ordering::Relaxed);
    // A dlclose of another thread that ran between the snapshot and the
    // fork, or was running: an object the snapshot lists may be gone.
    let begun = UNLOADS_BEGUN.load(Ordering::SeqCst);
    if begun != UNLOADS_AT_PREPARE.load(Ordering::SeqCst)
        || begun != UNLOADS_ENDED.load(Ordering::SeqCst)
    {
        UNLOADED_IN_CHILD.store(true, Ordering::Relaxed);
    }
    // SAFETY: fork_prepare left it locked on this (the only) thread.
    unsafe { FORK_SNAPSHOT.raw_unlock() };
}

/// In a fork child: an object it loaded after the fork, found by the
/// unwinder: listed from now on, and the trace's modules written again.
pub fn loaded_in_child(m: Module) {
    FORK_SNAPSHOT.with(|s| {
        if !s.0.iter().any(|o| o.base == m.base && o.path == m.path) {
            s.0.push(m);
            CHILD_LOADED.store(true, Ordering::Relaxed);
        }
    });
}

/// A fork child listed an object it loaded (see [`loaded_in_child`]) that
/// the trace's modules do not have yet.
static CHILD_LOADED: AtomicBool = AtomicBool::new(false);

/// Whether this is a fork child that has not exec'd: it must not ask the
/// loader anything (see [`FORK_SNAPSHOT`]).
pub fn in_fork_child() -> bool {
    IN_FORK_CHILD.load(Ordering::Relaxed)
}

/// A fork child unloaded an object: what the parent knew of its objects
/// may point at memory that is gone.
static UNLOADED_IN_CHILD: AtomicBool = AtomicBool::new(false);

/// `dlclose` calls begun and ended, and those begun when the last fork's
/// snapshot was taken.
static UNLOADS_BEGUN: AtomicU64 = AtomicU64::new(0);
static UNLOADS_ENDED: AtomicU64 = AtomicU64::new(0);
static UNLOADS_AT_PREPARE: AtomicU64 = AtomicU64::new(0);

/// An object is about to be unloaded (`dlclose`).
pub fn unloading() {
    UNLOADS_BEGUN.fetch_add(1, Ordering::SeqCst);
    if in_fork_child() {
        UNLOADED_IN_CHILD.store(true, Ordering::Relaxed);
    }
}

/// The `dlclose` that [`unloading`] announced returned.
pub fn unloaded() {
    UNLOADS_ENDED.fetch_add(1, Ordering::SeqCst);
}

/// In a fork child, the loader's counters (`dlpi_adds`, `dlpi_subs`) when
/// its parent forked, if it unloaded nothing since: the objects a table
/// built with them knows are still there. None when it may have.
pub fn counters_at_fork() -> Option<(u64, usize)> {
    (!UNLOADED_IN_CHILD.load(Ordering::Relaxed)).then(|| FORK_SNAPSHOT.with(|s| s.1))
}

/// The loader's (`dlpi_adds`, `dlpi_subs`): they change whenever an object
/// is loaded or unloaded. Not in a fork child.
pub fn loader_counters() -> (u64, usize) {
    let mut counters = (0u64, 0usize);
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        let c = &mut *(data as *mut (u64, usize));
        *c = ((*info).dlpi_adds, (*info).dlpi_subs as usize);
        1 // the counters are the same in every entry: stop at the first
    }
    // SAFETY: the callback only reads the entry it is given.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut counters as *mut _ as *mut c_void) };
    counters
}

/// Whether objects were loaded or unloaded since the last call.
pub fn modules_changed() -> bool {
    if in_fork_child() {
        // Only what its unwinder found it loaded: it cannot ask the loader.
        return CHILD_LOADED.swap(false, Ordering::Relaxed);
    }
    let counters = loader_counters();
    let adds = LAST_ADDS.swap(counters.0, Ordering::Relaxed);
    let subs = LAST_SUBS.swap(counters.1, Ordering::Relaxed);
    adds != counters.0 || subs != counters.1
}

/// Every loaded object with its PT_LOAD segments.
pub fn modules() -> Vec<Module> {
    if IN_FORK_CHILD.load(Ordering::Relaxed) {
        return FORK_SNAPSHOT.with(|s| s.0.clone());
    }
    let mut out: Vec<Module> = Vec::new();
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        let out = &mut *(data as *mut Vec<Module>);
        let info = &*info;
        out.push(Module::of_loaded(
            info.dlpi_addr,
            info.dlpi_name,
            info.dlpi_phdr,
            info.dlpi_phnum,
        ));
        0
    }
    // SAFETY: the callback only reads the entries it is given.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut _ as *mut c_void) };
    out
}
