//! User-space stacks of another process's threads, for `inspect --stacks`:
//! a brief ptrace stop per thread (PTRACE_SEIZE + PTRACE_INTERRUPT, its
//! registers, detached at once; a blocked system call restarts by itself),
//! unwound with the modules' `.eh_frame` (framehop, a CFI unwinder: Debian's
//! libraries have no frame pointers), symbolised like trace stacks.

use super::memory;
use super::procfs::via;
use crate::model::Module as TraceModule;
use anyhow::{bail, Result};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::BTreeMap;

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
}

pub fn modules(pid: u32) -> Result<Modules> {
    let maps = mappings(pid)?;
    let mut by_path: BTreeMap<&str, Vec<&Mapping>> = BTreeMap::new();
    for m in &maps {
        by_path.entry(m.path.as_str()).or_default().push(m);
    }
    let mut unwinder = UnwinderX86_64::new();
    let mut table = Vec::new();
    for (path, ms) in by_path {
        let Some(text) = ms.iter().find(|m| m.exec) else {
            continue;
        };
        let Ok(data) = std::fs::read(format!("/proc/{}/root{path}", via(pid)))
            .or_else(|_| std::fs::read(path))
        else {
            continue;
        };
        let Ok(obj) = object::File::parse(&*data) else {
            continue;
        };
        // The load bias: where the file's first mapping is, less the
        // address its first loadable segment asks for.
        let Some(first) = ms.iter().find(|m| m.offset == 0) else {
            continue;
        };
        let first_vaddr = obj.segments().map(|s| s.address()).min().unwrap_or(0) & !0xfff;
        let bias = first.start.wrapping_sub(first_vaddr);
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
        table.push(TraceModule {
            path: path.to_string(),
            base: bias,
            segments: ms.iter().map(|m| (m.start, m.end)).collect(),
        });
    }
    Ok(Modules { unwinder, table })
}

/// Stops one thread briefly and unwinds its stack (innermost first: the
/// instruction pointer, then return addresses).
pub fn stack(pid: u32, tid: u32, modules: &Modules) -> Result<Vec<u64>> {
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

fn unwind(pid: u32, regs: &libc::user_regs_struct, modules: &Modules) -> Vec<u64> {
    let mut cache = CacheX86_64::<_>::new();
    let start = UnwindRegsX86_64::new(regs.rip, regs.rsp, regs.rbp);
    let mut read_stack = |addr: u64| {
        memory::read(pid, addr, 8)
            .ok()
            .filter(|b| b.len() == 8)
            .map(|b| memory::u64_at(&b, 0))
            .ok_or(())
    };
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
