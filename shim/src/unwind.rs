//! The shim's own unwinder for a new fact's stack: framehop over the
//! loaded objects' `.eh_frame`, read in place, with a rule cache by
//! address. libgcc's `_Unwind_Backtrace` interprets every frame's CFI anew
//! each time (about 14 600 instructions per stack of `manylocks --stress`,
//! 40% of what the shim adds to its first moments); a stack taken again
//! through the same code is then mostly cache hits (about 2 500).
//!
//! It answers only where it can read safely and says what libgcc would:
//! the stack is read between the stack pointer and the top of this
//! thread's stack (glibc keeps a thread's descriptor at the top of its
//! stack; the main thread's ends just above `__libc_stack_end`); past a
//! frame no FDE covers (libgcc ends the stack there), the caller is found
//! by frame pointer, and taken only if it returns right after a call that
//! could have called that frame (see [`Fdes::after_call`]): Chromium has
//! FDEs for few of its functions and frame pointers in all, and its stacks
//! ended after one frame; and any other error, a thread it cannot bound,
//! or a fork child whose parent's table it cannot trust (it must not ask
//! the loader to build one) leaves the stack to libgcc.

use crate::stack;
use crate::sync::ForkMutex;
use crate::Fixed;
use core::ffi::{c_int, c_void};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use std::collections::HashMap;

/// Memory of a loaded object, read in place (no copy of a library's
/// `.eh_frame`). Valid while the object is loaded: the table is rebuilt
/// whenever the loader's counters change, and an object whose code is on
/// this thread's stack cannot have been unloaded.
#[derive(Clone, Copy, Default)]
struct Mapped {
    start: usize,
    len: usize,
}

impl core::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: see the type's comment.
        unsafe { core::slice::from_raw_parts(self.start as *const u8, self.len) }
    }
}

struct Table {
    unwinder: UnwinderX86_64<Mapped>,
    cache: CacheX86_64,
    /// The loader's (adds, subs) when it was built.
    counters: (u64, usize),
    fdes: Fdes,
}

/// The objects it can unwind, to ask whether a frame has an FDE.
struct Fdes {
    objects: Vec<Object>,
    /// [`Fdes::has_fde`]'s answers by return address. A map: a
    /// direct-mapped array of 512 missed about once a stack, its return
    /// addresses colliding (`manylocks --stress`: 2 017 FDE searches for
    /// 2 009 stacks, 2 200 of the 4 100 instructions a stack cost; 16
    /// searches with the map).
    seen: HashMap<u64, bool, Fixed>,
}

/// Return addresses [`Fdes::seen`] keeps before it starts again (a JIT's
/// code makes new ones without end).
const SEEN_MAX: usize = 1 << 14;

/// Where an object's code and unwind sections are.
struct Object {
    /// Its executable range (run-time addresses).
    code: (u64, u64),
    /// Its executable and readable segments (run-time addresses): `code`
    /// may span others between them, which may not be mapped.
    exec: Vec<(u64, u64)>,
    bias: u64,
    eh_frame_hdr: Mapped,
    eh_frame: Mapped,
    /// The sections' addresses as the object states them (for the
    /// pointers relative to them).
    bases: gimli::BaseAddresses,
}

/// Longest function a direct call's target is taken to start: a frame
/// found by frame pointer returns into a function whose call began at
/// most this far before the callee's return address.
const MAX_FUNCTION: u64 = 1 << 20;

impl Fdes {
    /// Whether `ra`, a caller found by frame pointer past the frame that
    /// returns into `callee_ra` (a function no FDE covers), follows a call
    /// instruction in a loaded object's code that could have made that
    /// frame: a direct call whose target starts at most [`MAX_FUNCTION`]
    /// before `callee_ra`, or an indirect one. In code built without frame
    /// pointers the frame pointer is any register's value, and the word
    /// above where it points is seldom the return of such a call: the
    /// stack ends there instead.
    fn after_call(&self, ra: u64, callee_ra: u64) -> bool {
        const LONGEST: u64 = 7;
        if !self.in_code_from(ra - 1, LONGEST - 1) {
            return false;
        }
        // SAFETY: the 7 bytes before `ra` are in an executable segment of
        // a loaded object, which is mapped and readable.
        let b = unsafe { core::slice::from_raw_parts((ra - LONGEST) as *const u8, 7) };
        call_ends_at(b).is_some_and(|target| {
            target.is_none_or(|rel| {
                let start = ra.wrapping_add(rel as u64);
                start < callee_ra && callee_ra - start < MAX_FUNCTION
            })
        })
    }

    /// Whether a frame that returns to `ra` returns into a loaded object's
    /// code.
    fn in_code(&self, ra: u64) -> bool {
        self.in_code_from(ra - 1, 0)
    }

    /// Whether the bytes from `at - before` to `at` are all in one readable
    /// executable segment of a loaded object.
    fn in_code_from(&self, at: u64, before: u64) -> bool {
        self.objects.iter().any(|o| {
            o.exec
                .iter()
                .any(|&(lo, hi)| at >= lo.saturating_add(before) && at < hi)
        })
    }

    /// Whether the function a frame returns into at `ra` has an FDE that
    /// covers the call. libgcc stops after a frame without one (it
    /// reports the frame, then ends the stack); framehop goes on by frame
    /// pointer, which in code built without one reads a stack word as a
    /// caller: [`Self::after_call`] says whether to believe it.
    fn has_fde(&mut self, ra: u64) -> bool {
        if let Some(&found) = self.seen.get(&ra) {
            return found;
        }
        let at = ra - 1;
        let found = self
            .objects
            .iter()
            .find(|o| at >= o.code.0 && at < o.code.1)
            .is_some_and(|o| o.covers(at - o.bias));
        if self.seen.len() >= SEEN_MAX {
            self.seen.clear();
        }
        self.seen.insert(ra, found);
        found
    }
}

impl Object {
    /// Whether an FDE of the object covers `svma`.
    fn covers(&self, svma: u64) -> bool {
        use gimli::{EhFrame, EhFrameHdr, LittleEndian, UnwindSection};
        let Ok(hdr) = EhFrameHdr::new(&self.eh_frame_hdr, LittleEndian).parse(&self.bases, 8)
        else {
            return false;
        };
        let Some(table) = hdr.table() else {
            return false;
        };
        let eh_frame = EhFrame::new(&self.eh_frame, LittleEndian);
        table
            .fde_for_address(&eh_frame, &self.bases, svma, EhFrame::cie_from_offset)
            .is_ok()
    }
}

static TABLE: ForkMutex<Option<Box<Table>>> = ForkMutex::new(None);

/// In a fork child: another thread of the parent held [`TABLE`] at the
/// fork, and it stays locked (and perhaps half built): libgcc unwinds.
static TABLE_LOST: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// In a fork child, before anything else of the shim runs: the table the
/// parent built is the child's if no thread held it at the fork (a Zygote's
/// children are forks that never exec: their stacks ended where libgcc's
/// do, after the first frame of Chromium's code).
pub fn after_fork_child() {
    let lost = TABLE.try_lock().is_none();
    TABLE_LOST.store(lost, core::sync::atomic::Ordering::Relaxed);
}

/// Deepest a stack the bounds allow: deeper, libgcc takes it.
const MAX_STACK: u64 = 1 << 30;

/// The current thread's stack, innermost first, as return addresses
/// outside `[skip_lo, skip_hi)` (the shim), at most `out.len()` of them;
/// None where libgcc must take it (see the module's comment).
#[inline(never)]
pub fn capture(out: &mut [u64], skip_lo: u64, skip_hi: u64) -> Option<usize> {
    if stack::in_fork_child() && TABLE_LOST.load(core::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let (pc, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers. The pc is the address right after
    // the `lea`, in this function, so the unwind starts here, where `sp`
    // and `bp` were read.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags)
        );
    }
    let top = stack_top(sp)?;
    let mut guard = TABLE.lock();
    let on = alt_stack()?;
    let mut walk = Walk {
        table: &mut guard,
        regs: (pc, sp, bp),
        top,
        skip: (skip_lo, skip_hi),
        out,
        found: None,
    };
    // SAFETY: `on` is the top of the unwinder's own stack, used only with
    // the table's lock held (as here); `walk` outlives the call.
    unsafe { call_on(on, walk_there, &mut walk as *mut Walk as *mut c_void) };
    walk.found
}

/// An unwind to make on the unwinder's own stack.
struct Walk<'a> {
    /// The table, built or rebuilt there (the loader's callbacks and
    /// framehop's index take stack too).
    table: &'a mut Option<Box<Table>>,
    /// pc, sp, bp where it starts.
    regs: (u64, u64, u64),
    /// The top of the stack read.
    top: u64,
    /// The shim's range, whose frames are left out.
    skip: (u64, u64),
    out: &'a mut [u64],
    /// The frames written into `out`, or None for libgcc to take it.
    found: Option<usize>,
}

/// [`Walk::run`] from [`call_on`]: a panic must not unwind into the stack
/// switch (it has no unwind information), so it is caught here.
unsafe extern "C" fn walk_there(walk: *mut c_void) {
    // SAFETY: `capture` passes its `Walk`, alive and not otherwise used.
    let walk = unsafe { &mut *(walk as *mut Walk) };
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| walk.run()));
    walk.found = found.ok().flatten();
}

impl Walk<'_> {
    fn run(&mut self) -> Option<usize> {
        if stack::in_fork_child() {
            // The child must not ask the loader: the parent's table, if
            // the objects it knows are still those the child has, else one
            // built from the program headers the parent listed at the fork
            // (a Zygote forks before it ever unwinds).
            let at_fork = stack::counters_at_fork()?;
            if self.table.as_ref().is_none_or(|t| t.counters != at_fork) {
                *self.table = Some(Box::new(build_at_fork(at_fork)));
            }
        } else {
            let counters = stack::loader_counters();
            if self.table.as_ref().is_none_or(|t| t.counters != counters) {
                *self.table = Some(Box::new(build(counters)));
            }
        }
        // A fork child meets code it loaded after the fork, which its
        // table lacks: learnt, and the stack walked again (a few times).
        let mut learnt = 0;
        loop {
            let (n, unknown) = self.walk()?;
            match unknown {
                Some(ip) if stack::in_fork_child() && learnt < 8 && self.learn(ip) => learnt += 1,
                _ => return Some(n),
            }
        }
    }

    /// One walk of the stack: the frames written, and the return address
    /// in code of no object the table knows where it ended, if it did so.
    fn walk(&mut self) -> Option<(usize, Option<u64>)> {
        let (pc, sp, bp) = self.regs;
        let top = self.top;
        let mut read = |addr: u64| {
            if addr >= sp && addr.checked_add(8).is_some_and(|end| end <= top) {
                // SAFETY: inside the unwound thread's stack, above its
                // stack pointer (frames that stay as they are while it
                // waits for this unwind).
                Ok(unsafe { (addr as *const u64).read_unaligned() })
            } else {
                Err(())
            }
        };
        let Table {
            unwinder,
            cache,
            fdes,
            ..
        } = &mut **self.table.as_mut()?;
        let mut frames =
            unwinder.iter_frames(pc, UnwindRegsX86_64::new(pc, sp, bp), cache, &mut read);
        let (skip_lo, skip_hi) = self.skip;
        let mut n = 0;
        // The return address of a frame no FDE covers: its caller comes
        // from its frame pointer.
        let mut by_frame_pointer = None;
        while n < self.out.len() {
            match frames.next() {
                Ok(Some(FrameAddress::ReturnAddress(ra))) => {
                    let ip = ra.get();
                    if by_frame_pointer.is_some_and(|callee| !fdes.after_call(ip, callee)) {
                        break;
                    }
                    if !(skip_lo..skip_hi).contains(&ip) {
                        self.out[n] = ip;
                        n += 1;
                    }
                    let covered = fdes.has_fde(ip);
                    // Code of no loaded object (a JIT's): nothing says its
                    // frame pointer is one. The stack ends there, as libgcc's.
                    if !covered && !fdes.in_code(ip) {
                        return Some((n, Some(ip)));
                    }
                    by_frame_pointer = (!covered).then_some(ip);
                }
                Ok(Some(FrameAddress::InstructionPointer(_))) => {}
                Ok(None) => break,
                // What the frame pointer led to could not be read.
                Err(_) if by_frame_pointer.is_some() => break,
                Err(_) => return None,
            }
        }
        Some((n, None))
    }

    /// In a fork child, the object that has the code at `ip`, loaded since
    /// the fork, added to the table and to the modules the trace lists;
    /// false when there is none.
    fn learn(&mut self, ip: u64) -> bool {
        let Some(m) = loaded_since_fork(ip - 1) else {
            return false;
        };
        let Some(t) = self.table.as_mut() else {
            return false;
        };
        // SAFETY: the program headers of a loaded object, found in memory.
        if !unsafe { t.add(m.base, m.phdr as *const libc::Elf64_Phdr, m.phnum) } {
            return false;
        }
        // What it said of the object's code before it knew it.
        t.fdes.seen.clear();
        stack::loaded_in_child(m);
        true
    }
}

/// The loaded object whose mapping has `addr`, as glibc's lock-free
/// `_dl_find_object` (2.35 and later) says, with its program headers read
/// from its ELF header at the start of its mapping: what a fork child that
/// must not ask the loader knows of an object it loaded after the fork.
fn loaded_since_fork(addr: u64) -> Option<stack::Module> {
    let find = crate::real::dl_find_object()?;
    // struct dl_find_object: flags, map start, map end, link map, eh_frame,
    // 7 reserved words.
    let mut out = [0u64; 12];
    // SAFETY: `out` is as large as glibc's struct dl_find_object.
    if unsafe { find(addr as *mut c_void, out.as_mut_ptr() as *mut c_void) } != 0 {
        return None;
    }
    let (start, end, link_map) = (out[1], out[2], out[3]);
    if link_map == 0 || end < start.checked_add(64)? {
        return None;
    }
    // SAFETY: the first 64 bytes of the object's mapping (its ELF header),
    // readable as its first segment is.
    let ehdr = unsafe { core::slice::from_raw_parts(start as *const u8, 64) };
    let u16_at = |o: usize| u16::from_le_bytes([ehdr[o], ehdr[o + 1]]);
    let phoff = u64::from_le_bytes(ehdr[0x20..0x28].try_into().ok()?);
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let size = core::mem::size_of::<libc::Elf64_Phdr>() as u64;
    let phdr = start.checked_add(phoff)?;
    // Only program headers in the mapping's first page, which the ELF
    // header shows mapped (they follow it in every object the linkers
    // make): elsewhere they could be in a hole between its segments.
    if &ehdr[..5] != b"\x7fELF\x02"
        || phentsize as u64 != size
        || phdr.checked_add(phnum as u64 * size)? > (start + 4096).min(end)
    {
        return None;
    }
    // SAFETY: `struct link_map` begins with l_addr, then l_name (its public
    // part); the loader keeps it while the object is loaded.
    let (bias, name) = unsafe {
        let l = link_map as *const u64;
        (*l, *(l.add(1)) as *const core::ffi::c_char)
    };
    // SAFETY: the loader's name of a loaded object, and its program
    // headers, checked to lie inside the object's mapping.
    Some(unsafe { stack::Module::of_loaded(bias, name, phdr as *const libc::Elf64_Phdr, phnum) })
}

/// The unwinder's own stack: gimli's CFI rows take more than 8 KiB of
/// stack, more than a thread on a small stack has left. Reserved once
/// (8 MiB, as a thread's, only what is touched is memory; a guard page
/// below it), never freed; used by one unwind at a time, under the table's
/// lock. Returns its top; None if it cannot be mapped.
fn alt_stack() -> Option<usize> {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static TOP: AtomicUsize = AtomicUsize::new(0);
    const SIZE: usize = 8 << 20;
    const GUARD: usize = 4096;
    let top = TOP.load(Ordering::Relaxed);
    if top != 0 {
        return Some(top);
    }
    // SAFETY: a new private mapping; nothing else refers to it.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            SIZE + GUARD,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the lowest page of the mapping just made.
    unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) };
    let top = base as usize + GUARD + SIZE;
    TOP.store(top, Ordering::Relaxed);
    Some(top)
}

/// Calls `f(arg)` with the stack pointer at `top` (16-byte aligned), then
/// returns to the caller's stack: `r12`, which `f` preserves, keeps it.
///
/// # Safety
/// `top` is the top of a stack nothing else uses meanwhile, large enough
/// for `f`; `f` does not unwind.
unsafe fn call_on(top: usize, f: unsafe extern "C" fn(*mut c_void), arg: *mut c_void) {
    // SAFETY: as the function's contract says.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {top}",
            "call {f}",
            "mov rsp, r12",
            top = in(reg) top,
            f = in(reg) f,
            inout("rdi") arg => _,
            out("r12") _,
            clobber_abi("C"),
        );
    }
}

extern "C" {
    /// ld.so's: where the main thread's stack started (argc).
    static __libc_stack_end: *const c_void;
}

/// The top of the stack `sp` is on: the thread's descriptor for a thread
/// glibc made, the page above `__libc_stack_end` for the main thread;
/// None for anything else.
fn stack_top(sp: u64) -> Option<u64> {
    // SAFETY: no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    if me > sp && me - sp < MAX_STACK {
        return Some(me);
    }
    // SAFETY: set by the loader before any code of the program ran.
    let end = unsafe { __libc_stack_end } as u64;
    let top = (end | 0xfff) + 1;
    if end > sp && top - sp < MAX_STACK && rustix::thread::gettid() == rustix::process::getpid() {
        return Some(top);
    }
    None
}

/// The table of every loaded object with unwind information.
fn build(counters: (u64, usize)) -> Table {
    let mut t = empty(counters);
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: the loader passes a valid entry; `data` is the table.
        let (info, t) = unsafe { (&*info, &mut *(data as *mut Table)) };
        // SAFETY: the loader's program headers of a loaded object.
        unsafe { t.add(info.dlpi_addr, info.dlpi_phdr, info.dlpi_phnum) };
        0
    }
    // SAFETY: the callback only reads the entries it is given.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut t as *mut Table as *mut c_void) };
    t
}

impl Table {
    /// Adds the object loaded at `bias` whose `phnum` program headers are
    /// at `phdr`, if it has unwind information; false if not.
    ///
    /// # Safety
    /// They are the program headers of an object loaded at `bias`.
    unsafe fn add(&mut self, bias: u64, phdr: *const libc::Elf64_Phdr, phnum: u16) -> bool {
        // SAFETY: as this function's.
        let phdrs = unsafe { core::slice::from_raw_parts(phdr, phnum as usize) };
        // SAFETY: as this function's.
        let Some((object, module)) = (unsafe { module(bias, phdrs) }) else {
            return false;
        };
        self.fdes.objects.push(object);
        self.unwinder.add_module(module);
        true
    }
}

fn empty(counters: (u64, usize)) -> Table {
    Table {
        unwinder: UnwinderX86_64::new(),
        cache: CacheX86_64::new(),
        counters,
        fdes: Fdes {
            objects: Vec::new(),
            seen: HashMap::default(),
        },
    }
}

/// A fork child's table, from the objects its parent's loader listed at the
/// fork (`counters`): their program headers are in memory the child has,
/// unless it unloaded an object since (then no table is built).
fn build_at_fork(counters: (u64, usize)) -> Table {
    let mut t = empty(counters);
    for m in stack::modules().iter().filter(|m| m.phdr != 0) {
        // SAFETY: the loader's program headers of an object still loaded
        // (the caller checked that the child unloaded nothing).
        unsafe { t.add(m.base, m.phdr as *const libc::Elf64_Phdr, m.phnum) };
    }
    t
}

/// One object's code and unwind sections and its module, from its program
/// headers: the text spans its executable segments, `.eh_frame_hdr` is
/// `PT_GNU_EH_FRAME`, and `.eh_frame` starts where the header says and
/// runs at most to the end of its segment.
///
/// # Safety
/// `phdrs` are the program headers of an object loaded at `bias`.
unsafe fn module(bias: u64, phdrs: &[libc::Elf64_Phdr]) -> Option<(Object, Module<Mapped>)> {
    let loads = || phdrs.iter().filter(|p| p.p_type == libc::PT_LOAD);
    // The code is every executable segment, not the first: node has three
    // (its `.init` and `.plt`, its `.text`, a stub for large pages), and a
    // module of the first only ended each of its stacks after one frame.
    let exec = || loads().filter(|p| p.p_flags & libc::PF_X != 0);
    let text_start = exec().map(|p| p.p_vaddr).min()?;
    let text_end = exec().map(|p| p.p_vaddr + p.p_memsz).max()?;
    let hdr = phdrs.iter().find(|p| p.p_type == libc::PT_GNU_EH_FRAME)?;
    let hdr_svma = hdr.p_vaddr;
    let hdr_len = hdr.p_memsz as usize;
    if hdr_len < 8 {
        return None;
    }
    let hdr_at = (bias + hdr_svma) as usize;
    // SAFETY: PT_GNU_EH_FRAME is mapped, `hdr_len` bytes.
    let h = unsafe { core::slice::from_raw_parts(hdr_at as *const u8, hdr_len) };
    let eh_frame_at = eh_frame_ptr(h, hdr_at as u64)?;
    let eh_frame_svma = eh_frame_at.checked_sub(bias)?;
    let seg =
        loads().find(|p| eh_frame_svma >= p.p_vaddr && eh_frame_svma < p.p_vaddr + p.p_memsz)?;
    let eh_frame_len = (seg.p_vaddr + seg.p_filesz).checked_sub(eh_frame_svma)?;
    let text_svma = text_start..text_end;
    let code = (bias + text_svma.start, bias + text_svma.end);
    let eh_frame = Mapped {
        start: eh_frame_at as usize,
        len: eh_frame_len as usize,
    };
    let eh_frame_hdr = Mapped {
        start: hdr_at,
        len: hdr_len,
    };
    let object = Object {
        code,
        // Readable too: code mapped execute-only (protection keys make it
        // so) cannot be read for a call instruction.
        exec: exec()
            .filter(|p| p.p_flags & libc::PF_R != 0)
            .map(|p| (bias + p.p_vaddr, bias + p.p_vaddr + p.p_memsz))
            .collect(),
        bias,
        eh_frame_hdr,
        eh_frame,
        bases: gimli::BaseAddresses::default()
            .set_eh_frame_hdr(hdr_svma)
            .set_eh_frame(eh_frame_svma)
            .set_text(text_svma.start),
    };
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text_svma),
        eh_frame_svma: Some(eh_frame_svma..eh_frame_svma + eh_frame_len),
        eh_frame: Some(eh_frame),
        eh_frame_hdr_svma: Some(hdr_svma..hdr_svma + hdr_len as u64),
        eh_frame_hdr: Some(eh_frame_hdr),
        ..Default::default()
    };
    let module = Module::new(String::new(), code.0..code.1, bias, info);
    Some((object, module))
}

/// Whether the 7 bytes `b` end with a call instruction: Some(Some(rel))
/// for a direct call (`e8 rel32`: its target is the end plus `rel`),
/// Some(None) for an indirect one (`ff /2` through a register or memory,
/// with or without a REX prefix before it), None for neither.
fn call_ends_at(b: &[u8]) -> Option<Option<i32>> {
    let &[b0, b1, b2, b3, b4, b5, b6] = b else {
        return None;
    };
    if b2 == 0xe8 {
        return Some(Some(i32::from_le_bytes([b3, b4, b5, b6])));
    }
    // The ModRM byte after `ff`: reg 2 (call), and the length its mode
    // and r/m give the instruction.
    let length = |modrm: u8| -> Option<usize> {
        if modrm >> 3 & 7 != 2 {
            return None;
        }
        let (mode, rm) = (modrm >> 6, modrm & 7);
        let sib = usize::from(mode != 3 && rm == 4);
        Some(match mode {
            0 if rm == 5 => 6,
            0 => 2 + sib,
            1 => 3 + sib,
            2 => 6 + sib,
            _ => 2,
        })
    };
    let ff_at = [
        (b5, b6, 2),
        (b4, b5, 3),
        (b3, b4, 4),
        (b1, b2, 6),
        (b0, b1, 7),
    ];
    ff_at
        .iter()
        .any(|&(op, modrm, len)| op == 0xff && length(modrm) == Some(len))
        .then_some(None)
}

/// `.eh_frame`'s address, from `.eh_frame_hdr` mapped at `at`: version
/// 1, then the pointer's encoding (absolute or pc-relative; 4 or 8
/// bytes), two other encodings, and the pointer.
fn eh_frame_ptr(h: &[u8], at: u64) -> Option<u64> {
    const PCREL: u8 = 0x10;
    let (&version, &enc) = (h.first()?, h.get(1)?);
    if version != 1 {
        return None;
    }
    let field = at + 4;
    let raw = |n: usize| h.get(4..4 + n);
    let value = match enc & 0x0f {
        // udata4, sdata4
        0x03 => u32::from_le_bytes(raw(4)?.try_into().ok()?) as u64,
        0x0b => i32::from_le_bytes(raw(4)?.try_into().ok()?) as i64 as u64,
        // absptr, udata8, sdata8
        0x00 | 0x04 | 0x0c => u64::from_le_bytes(raw(8)?.try_into().ok()?),
        _ => return None,
    };
    match enc & 0x70 {
        0 => Some(value),
        PCREL => Some(field.wrapping_add(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both unwinders from one function: past the first frame (each
    /// returns into `both` from its own call), the frames are the same.
    #[inline(never)]
    fn both() -> (Vec<u64>, Vec<u64>) {
        let mut out = [0u64; 32];
        let n = capture(&mut out, 0, 0).expect("a std thread's stack is bounded");
        let mut gcc = Vec::new();
        // SAFETY: a test thread; nothing else unwinds it.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                gcc.push(f.ip() as u64);
                gcc.len() < 64
            })
        };
        (out[..n].to_vec(), gcc)
    }

    #[inline(never)]
    fn nested(depth: u32) -> (Vec<u64>, Vec<u64>) {
        let r = if depth == 0 {
            both()
        } else {
            nested(depth - 1)
        };
        // Not a tail call: each level keeps a frame.
        core::hint::black_box(r)
    }

    #[test]
    fn stacks_are_those_libgcc_unwinds() {
        let (mine, gcc) = nested(5);
        assert!(mine.len() >= 7, "{mine:x?}");
        let from = gcc
            .iter()
            .position(|&f| f == mine[1])
            .unwrap_or_else(|| panic!("{:x} not in {gcc:x?}", mine[1]));
        let k = (gcc.len() - from).min(mine.len() - 1);
        assert!(k >= 6, "{mine:x?} {gcc:x?}");
        assert_eq!(mine[1..1 + k], gcc[from..from + k], "{mine:x?} {gcc:x?}");
    }

    /// Where this thread's stack ends (its lowest address).
    fn stack_bottom() -> usize {
        // SAFETY: attributes of this thread, destroyed after use.
        unsafe {
            let mut attr: libc::pthread_attr_t = core::mem::zeroed();
            assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
            let (mut addr, mut size) = (core::ptr::null_mut(), 0);
            assert_eq!(libc::pthread_attr_getstack(&attr, &mut addr, &mut size), 0);
            libc::pthread_attr_destroy(&mut attr);
            addr as usize
        }
    }

    /// Uses this thread's stack down to `room` bytes above its end, then
    /// unwinds from there (64 frames).
    #[inline(never)]
    fn deep(bottom: usize, room: usize) -> Vec<u64> {
        let pad = core::hint::black_box([0u8; 512]);
        let here = pad.as_ptr() as usize;
        let r = if here < bottom + room {
            let mut out = [0u64; 64];
            let n = capture(&mut out, 0, 0).expect("bounded");
            out[..n].to_vec()
        } else {
            deep(bottom, room)
        };
        core::hint::black_box((r, pad)).0
    }

    #[test]
    fn a_thread_with_little_stack_left_is_unwound_on_the_unwinders_stack() {
        // 6 KiB left where the unwind starts (the table not built yet, as
        // in a program's first fact): gimli alone needs more.
        let t = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                *TABLE.lock() = None;
                deep(stack_bottom(), 6 << 10)
            })
            .unwrap();
        let frames = t.join().expect("the thread did not overflow its stack");
        // All 64, all but the first the recursion's return address.
        assert_eq!(frames.len(), 64, "{frames:x?}");
        assert!(frames[1..].iter().all(|&f| f == frames[1]), "{frames:x?}");
    }

    // Functions with no unwind information (no CFI directives: no FDE
    // covers them) that call their argument: one with no frame pointer
    // (its frame pointer register 0, as a caller built without them may
    // leave it), one that keeps one as code built with them does.
    core::arch::global_asm!(
        ".text",
        ".globl holdcheck_unwind_test_no_fde",
        "holdcheck_unwind_test_no_fde:",
        "push rbp",
        "xor ebp, ebp",
        "call rdi",
        "pop rbp",
        "ret",
        ".globl holdcheck_unwind_test_no_fde_fp",
        "holdcheck_unwind_test_no_fde_fp:",
        "push rbp",
        "mov rbp, rsp",
        "call rdi",
        "pop rbp",
        "ret",
    );
    extern "C" {
        fn holdcheck_unwind_test_no_fde(f: extern "C" fn());
        fn holdcheck_unwind_test_no_fde_fp(f: extern "C" fn());
    }

    // Per thread: the tests that use it run at once.
    thread_local! {
        static SEEN: core::cell::RefCell<Option<(Vec<u64>, Vec<u64>)>> =
            const { core::cell::RefCell::new(None) };
    }

    extern "C" fn from_no_fde() {
        SEEN.with(|s| *s.borrow_mut() = Some(both()));
    }

    #[test]
    fn a_stack_ends_after_a_frame_without_unwind_information_as_libgcc_ends_it() {
        // SAFETY: the function above calls the callback and returns.
        unsafe { holdcheck_unwind_test_no_fde(from_no_fde) };
        let (mine, gcc) = SEEN.with(|s| s.borrow_mut().take()).unwrap();
        // Into `both`, into `from_no_fde` (through its closure), into the
        // function without an FDE: there both stop (libgcc reports that
        // frame, then ends).
        assert_eq!(mine.len(), gcc.len(), "{mine:x?} {gcc:x?}");
        assert_eq!(mine[1..], gcc[1..], "{mine:x?} {gcc:x?}");
    }

    #[test]
    fn past_a_frame_without_unwind_information_its_frame_pointer_leads_on() {
        // The callers of this function, as libgcc sees them from here.
        let mut outer = Vec::new();
        // SAFETY: a test thread; nothing else unwinds it.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                outer.push(f.ip() as u64);
                outer.len() < 64
            })
        };
        // SAFETY: the function above calls the callback and returns.
        unsafe { holdcheck_unwind_test_no_fde_fp(from_no_fde) };
        let (mine, gcc) = SEEN.with(|s| s.borrow_mut().take()).unwrap();
        // Into `both`, into `from_no_fde`, into the function without an
        // FDE (where libgcc stops), into this function, then its callers.
        let at = mine
            .iter()
            .position(|f| Some(f) == gcc.last())
            .unwrap_or_else(|| panic!("{mine:x?} {gcc:x?}"));
        assert_eq!(mine[1..=at], gcc[1..], "{mine:x?} {gcc:x?}");
        let callers = &mine[at + 2..];
        let k = (outer.len() - 1).min(callers.len());
        assert!(k >= 2, "{mine:x?} {outer:x?}");
        assert_eq!(callers[..k], outer[1..1 + k], "{mine:x?} {outer:x?}");
    }

    #[test]
    fn a_call_instruction_is_known_by_its_last_bytes() {
        let pad = |tail: &[u8]| {
            let mut b = [0x90u8; 7];
            b[7 - tail.len()..].copy_from_slice(tail);
            b
        };
        // call rel32 (-0x20).
        assert_eq!(
            call_ends_at(&pad(&[0xe8, 0xe0, 0xff, 0xff, 0xff])),
            Some(Some(-0x20))
        );
        // call rax; call r11 (REX); call [rax]; call [rbx+8]; call [rsp+8]
        // (SIB); call [rip+x]; call [rax+x]; call [rax+rcx*8+x] (SIB).
        for tail in [
            &[0xff, 0xd0][..],
            &[0x41, 0xff, 0xd3],
            &[0xff, 0x10],
            &[0xff, 0x53, 0x08],
            &[0xff, 0x54, 0x24, 0x08],
            &[0xff, 0x15, 1, 2, 3, 4],
            &[0xff, 0x90, 1, 2, 3, 4],
            &[0xff, 0x94, 0xc8, 1, 2, 3, 4],
        ] {
            assert_eq!(call_ends_at(&pad(tail)), Some(None), "{tail:x?}");
        }
        // jmp rax, jmp [rip+x], push [rax], a mov: no call.
        for tail in [
            &[0xff, 0xe0][..],
            &[0xff, 0x25, 1, 2, 3, 4],
            &[0xff, 0x30],
            &[0x48, 0x89, 0xc7],
        ] {
            assert_eq!(call_ends_at(&pad(tail)), None, "{tail:x?}");
        }
    }

    #[test]
    fn a_stack_is_cut_at_the_frames_asked_for() {
        let mut out = [0u64; 3];
        assert_eq!(capture(&mut out, 0, 0), Some(3));
        assert!(out.iter().all(|&f| f != 0));
    }

    #[test]
    fn the_eh_frame_pointer_is_decoded_in_each_encoding() {
        let at = 0x1000;
        // pc-relative sdata4: -0x100 from the field at 0x1004.
        let h = [1, 0x1b, 0x03, 0x3b, 0x00, 0xff, 0xff, 0xff];
        assert_eq!(eh_frame_ptr(&h, at), Some(0x1004 - 0x100));
        // absolute udata8.
        let mut h = vec![1, 0x04, 0x03, 0x3b];
        h.extend_from_slice(&0x7f00_0000_1234u64.to_le_bytes());
        assert_eq!(eh_frame_ptr(&h, at), Some(0x7f00_0000_1234));
        // another version, an encoding it does not know, too short.
        assert_eq!(eh_frame_ptr(&[2, 0x1b, 0, 0, 0, 0, 0, 0], at), None);
        assert_eq!(eh_frame_ptr(&[1, 0x09, 0, 0, 0, 0, 0, 0], at), None);
        assert_eq!(eh_frame_ptr(&[1, 0x04, 0, 0, 0, 0, 0, 0], at), None);
    }
}
