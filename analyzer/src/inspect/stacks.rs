//! User-space stacks of another process's threads, for `inspect --stacks`,
//! unwound with the modules' `.eh_frame` (framehop, a CFI unwinder: Debian's
//! libraries have no frame pointers) and symbolised like trace stacks.
//!
//! A thread blocked in a system call is unwound without stopping it: its
//! stack pointer and pc are in /proc/TID/syscall and its stack is read with
//! process_vm_readv. Only the frame pointer is missing: it is restored from
//! the stack by the first frame that saved it, and where a frame needs it
//! before that, the frame-pointer values the stack holds are tried until
//! one unwinds cleanly to the thread's root. Only when none does is the
//! thread stopped (PTRACE_SEIZE + PTRACE_INTERRUPT, its registers,
//! detached at once). A stop makes some blocked calls return EINTR to the
//! program instead of restarting (signal(7): `epoll_wait`, `semop`,
//! `sigtimedwait`/`sigwaitinfo`, a socket call under `SO_RCVTIMEO` or
//! `SO_SNDTIMEO`, `io_getevents`, …): the report says which threads were
//! stopped.

use super::memory;
use super::procfs::via;
use crate::model::Module as TraceModule;
use anyhow::{bail, Result};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::collections::BTreeMap;
use std::collections::HashMap;

/// Most frames taken per thread.
const MAX_FRAMES: usize = 64;

/// One mapped file of the process.
struct Mapping {
    path: String,
    start: u64,
    end: u64,
    offset: u64,
    exec: bool,
}

fn mappings(pid: u32) -> Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{}/maps", via(pid)))?;
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 6 || !f[5].starts_with('/') {
            continue;
        }
        let Some((s, e)) = f[0].split_once('-') else {
            continue;
        };
        out.push(Mapping {
            path: f[5].to_string(),
            start: u64::from_str_radix(s, 16)?,
            end: u64::from_str_radix(e, 16)?,
            offset: u64::from_str_radix(f[2], 16)?,
            exec: f[1].contains('x'),
        });
    }
    Ok(out)
}

/// The process's modules: for the unwinder, and for the symboliser.
pub struct Modules {
    unwinder: UnwinderX86_64<Vec<u8>>,
    pub table: Vec<TraceModule>,
    /// The executable mappings: where a return address can point.
    code: Vec<std::ops::Range<u64>>,
    /// Function starts and ends (from the symbol tables), sorted: to check
    /// that a return address's call goes to the function below it.
    functions: Vec<(u64, u64)>,
    /// PLT sections: a call through one names no function.
    plts: Vec<std::ops::Range<u64>>,
}

impl Modules {
    /// The start of the function containing `pc`, where a symbol says.
    fn function_start(&self, pc: u64) -> Option<u64> {
        let i = self.functions.partition_point(|f| f.0 <= pc);
        let (start, end) = *self.functions.get(i.checked_sub(1)?)?;
        (pc < end).then_some(start)
    }
}

/// A module as the trace has it: its load bias and its loadable segments
/// in memory (the zero-filled end of `.bss` too, where a static lock can
/// live, which no file mapping shows).
fn table_entry(path: &str, obj: &object::File, bias: u64) -> TraceModule {
    use object::ObjectSegment;
    TraceModule {
        path: path.to_string(),
        base: bias,
        segments: obj
            .segments()
            .map(|s| {
                let start = s.address().wrapping_add(bias);
                (start, start.wrapping_add(s.size()))
            })
            .collect(),
    }
}

/// Calls `f` with each code module mapped in the process: its path, its
/// mappings, its parsed file and its load bias (where its first mapping
/// is, less the address its first loadable segment asks for).
fn each_module(
    pid: u32,
    maps: &[Mapping],
    mut f: impl FnMut(&str, &[&Mapping], &object::File, u64),
) {
    let mut by_path: BTreeMap<&str, Vec<&Mapping>> = BTreeMap::new();
    for m in maps {
        by_path.entry(m.path.as_str()).or_default().push(m);
    }
    for (path, ms) in by_path {
        if !ms.iter().any(|m| m.exec) {
            continue;
        }
        let Ok(data) = std::fs::read(format!("/proc/{}/root{path}", via(pid)))
            .or_else(|_| std::fs::read(path))
        else {
            continue;
        };
        let Ok(obj) = object::File::parse(&*data) else {
            continue;
        };
        let Some(first) = ms.iter().find(|m| m.offset == 0) else {
            continue;
        };
        let first_vaddr = obj.segments().map(|s| s.address()).min().unwrap_or(0) & !0xfff;
        f(path, &ms, &obj, first.start.wrapping_sub(first_vaddr));
    }
}

/// The module table of a process alone (for naming its locks by their
/// variables), without reading any unwind information.
pub fn module_table(pid: u32) -> Result<Vec<TraceModule>> {
    let maps = mappings(pid)?;
    let mut table = Vec::new();
    each_module(pid, &maps, |path, _, obj, bias| {
        table.push(table_entry(path, obj, bias))
    });
    Ok(table)
}

pub fn modules(pid: u32) -> Result<Modules> {
    let maps = mappings(pid)?;
    let mut unwinder = UnwinderX86_64::new();
    let mut table = Vec::new();
    let code = maps
        .iter()
        .filter(|m| m.exec)
        .map(|m| m.start..m.end)
        .collect();
    let mut functions = Vec::new();
    let mut plts = Vec::new();
    each_module(pid, &maps, |path, ms, obj, bias| {
        let Some(text) = ms.iter().find(|m| m.exec) else {
            return;
        };
        let section = |name: &str| {
            obj.section_by_name(name)
                .and_then(|s| Some((s.address()..s.address() + s.size(), s.data().ok()?.to_vec())))
        };
        let (eh_frame_svma, eh_frame) =
            section(".eh_frame").map_or((None, None), |(r, d)| (Some(r), Some(d)));
        let (eh_frame_hdr_svma, eh_frame_hdr) =
            section(".eh_frame_hdr").map_or((None, None), |(r, d)| (Some(r), Some(d)));
        let (text_svma, text_data) =
            section(".text").map_or((None, None), |(r, d)| (Some(r), Some(d)));
        let info = ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma,
            text: text_data,
            eh_frame_svma,
            eh_frame,
            eh_frame_hdr_svma,
            eh_frame_hdr,
            ..Default::default()
        };
        unwinder.add_module(Module::new(
            path.to_string(),
            text.start..text.end,
            bias,
            info,
        ));
        for sym in obj.symbols().chain(obj.dynamic_symbols()) {
            if sym.kind() == SymbolKind::Text && sym.size() > 0 {
                let start = sym.address().wrapping_add(bias);
                functions.push((start, start + sym.size()));
            }
        }
        for name in [".plt", ".plt.sec", ".plt.got"] {
            if let Some(sec) = obj.section_by_name(name) {
                let start = sec.address().wrapping_add(bias);
                plts.push(start..start + sec.size());
            }
        }
        table.push(table_entry(path, obj, bias));
    });
    functions.sort_unstable();
    functions.dedup();
    Ok(Modules {
        unwinder,
        table,
        code,
        functions,
        plts,
    })
}

/// How a stack was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Read while the thread stayed blocked.
    Unstopped,
    /// With a ptrace stop.
    Stopped,
}

/// Bytes of a thread's stack read at once for the unstopped unwind.
const STACK_BYTES: u64 = 64 * 1024;

/// A thread's stack (innermost first: the instruction pointer, then
/// return addresses), without stopping it where that works.
pub fn stack(pid: u32, tid: u32, modules: &Modules) -> Result<(Vec<u64>, Taken)> {
    if let Some(frames) = stack_unstopped(pid, tid, modules) {
        return Ok((frames, Taken::Unstopped));
    }
    Ok((stack_stopped(pid, tid, modules)?, Taken::Stopped))
}

/// The stack of a thread blocked in a system call, from its stack pointer
/// and pc in /proc/TID/syscall, with no stop; None when no frame-pointer
/// value unwinds cleanly.
fn stack_unstopped(pid: u32, tid: u32, modules: &Modules) -> Option<Vec<u64>> {
    let line = std::fs::read_to_string(format!("/proc/{}/task/{tid}/syscall", via(pid))).ok()?;
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 3 || f[0] == "running" {
        return None;
    }
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let (sp, pc) = (hex(f[f.len() - 2])?, hex(f[f.len() - 1])?);
    // The stack above sp, page by page until its mapping ends.
    let mut block = Vec::new();
    let mut at = sp;
    while at < sp + STACK_BYTES {
        let page_end = (at | 0xfff) + 1;
        match memory::read(pid, at, (page_end - at) as usize) {
            Ok(b) if b.len() as u64 == page_end - at => block.extend_from_slice(&b),
            _ => break,
        }
        at = page_end;
    }
    let word = |a: u64| -> Option<u64> {
        let off = a.checked_sub(sp)? as usize;
        block.get(off..off + 8).map(|b| memory::u64_at(b, 0))
    };
    let in_code = |a: u64| modules.code.iter().any(|r| r.contains(&a));
    let mut read_stack = |a: u64| word(a).or_else(|| read_word(pid, a)).ok_or(());
    let mut clean = |bp: u64| {
        unwind_from(modules, pc, sp, bp, &mut read_stack)
            .filter(|f| f.len() >= 2 && f.iter().all(|&a| in_code(a) || in_code(a.wrapping_sub(1))))
    };
    // Exact when the frame pointer does not matter: two different values
    // give the same clean unwind (a zero one also ends an unwind early,
    // as at a root).
    let unused = clean(0);
    if unused.is_some() && unused == clean(!0xf) {
        return unused;
    }
    // Else the frame pointer of a frame-pointer frame points just below a
    // return address ([bp] the caller's bp, [bp+8] the return address):
    // each slot below a word that points into code is tried, innermost
    // first. A stack holds stale return addresses too, so the unwind
    // kept is the one whose direct calls best lead to the function below
    // each (then the longest).
    let mut calls = HashMap::new();
    (1..block.len() as u64 / 8)
        .map(|i| sp + i * 8)
        .filter(|&a| word(a).is_some_and(in_code))
        .map(|a| a - 8)
        .take(48)
        .filter_map(&mut clean)
        .map(|f| (call_score(pid, modules, &f, &mut calls), f.len(), f))
        .fold(None, |best: Option<(i32, usize, Vec<u64>)>, c| match best {
            Some(b) if (b.0, b.1) >= (c.0, c.1) => Some(b),
            _ => Some(c),
        })
        .map(|(_, _, f)| f)
}

/// How well an unwind's return addresses agree with the code: +1 for each
/// whose call instruction (a direct `call rel32`) goes to the start of the
/// function the frame below is in, -1 for one that goes elsewhere, 0 where
/// that cannot be told (an indirect call, a PLT stub, no symbol, a tail
/// call's frame).
fn call_score(
    pid: u32,
    modules: &Modules,
    frames: &[u64],
    calls: &mut HashMap<u64, Option<u64>>,
) -> i32 {
    frames
        .windows(2)
        .map(|w| {
            let (below, ret) = (w[0], w[1]);
            let target = *calls.entry(ret).or_insert_with(|| {
                let b = memory::read(pid, ret.wrapping_sub(5), 5).ok()?;
                (b.len() == 5 && b[0] == 0xe8).then(|| {
                    let rel = i32::from_le_bytes([b[1], b[2], b[3], b[4]]);
                    ret.wrapping_add(rel as i64 as u64)
                })
            });
            match (target, modules.function_start(below)) {
                (Some(t), _) if modules.plts.iter().any(|p| p.contains(&t)) => 0,
                (Some(t), Some(f)) if t == f => 1,
                (Some(_), Some(_)) => -1,
                _ => 0,
            }
        })
        .sum()
}

fn read_word(pid: u32, addr: u64) -> Option<u64> {
    memory::read(pid, addr, 8)
        .ok()
        .filter(|b| b.len() == 8)
        .map(|b| memory::u64_at(&b, 0))
}

/// Unwinds from registers; Some only when the unwinder reached the root
/// (the outermost function's CFI ends the stack), not an error.
fn unwind_from(
    modules: &Modules,
    pc: u64,
    sp: u64,
    bp: u64,
    read_stack: &mut dyn FnMut(u64) -> Result<u64, ()>,
) -> Option<Vec<u64>> {
    let mut cache = CacheX86_64::<_>::new();
    let start = UnwindRegsX86_64::new(pc, sp, bp);
    let mut read = |a: u64| read_stack(a);
    let mut it = modules
        .unwinder
        .iter_frames(pc, start, &mut cache, &mut read);
    let mut out = Vec::new();
    loop {
        match it.next() {
            Ok(Some(f)) => {
                out.push(f.address());
                if out.len() >= MAX_FRAMES {
                    return Some(out);
                }
            }
            Ok(None) => return Some(out),
            Err(_) => return None,
        }
    }
}

/// Stops one thread briefly and unwinds its stack.
fn stack_stopped(pid: u32, tid: u32, modules: &Modules) -> Result<Vec<u64>> {
    let t = tid as libc::pid_t;
    // SAFETY: ptrace requests on a thread of the inspected process; the
    // register block is a local of the right type. Every path detaches.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, t, 0, 0) != 0 {
            bail!(
                "cannot attach to thread {tid}: {}",
                std::io::Error::last_os_error()
            );
        }
        let stopped = libc::ptrace(libc::PTRACE_INTERRUPT, t, 0, 0) == 0 && {
            let mut status = 0;
            libc::waitpid(t, &mut status, libc::__WALL) == t
        };
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        let got = stopped && libc::ptrace(libc::PTRACE_GETREGS, t, 0, &mut regs) == 0;
        let frames = if got {
            unwind(pid, &regs, modules)
        } else {
            Vec::new()
        };
        libc::ptrace(libc::PTRACE_DETACH, t, 0, 0);
        if !got {
            bail!("cannot stop thread {tid} to read its registers");
        }
        Ok(frames)
    }
}

/// Unwinds from a stopped thread's registers, as far as it goes.
fn unwind(pid: u32, regs: &libc::user_regs_struct, modules: &Modules) -> Vec<u64> {
    let mut cache = CacheX86_64::<_>::new();
    let start = UnwindRegsX86_64::new(regs.rip, regs.rsp, regs.rbp);
    let mut read_stack = |addr: u64| read_word(pid, addr).ok_or(());
    let mut it = modules
        .unwinder
        .iter_frames(regs.rip, start, &mut cache, &mut read_stack);
    let mut out = Vec::new();
    while let Ok(Some(f)) = it.next() {
        out.push(f.address());
        if out.len() >= MAX_FRAMES {
            break;
        }
    }
    out
}
