//! Offline symbolisation of the return addresses in a trace, from the module
//! table the shim recorded: function, file:line and inlined frames, through
//! blazesym (which follows `.gnu_debuglink`). A module whose build id has a
//! separate debug file (`/usr/lib/debug/.build-id/ab/cdef….debug`, as
//! Debian's `-dbgsym` packages install them) is symbolised from that file.
//! `HOLDCHECK_DEBUG_DIRS` (colon-separated) replaces `/usr/lib/debug`.

use crate::model::{Model, Process};
use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One symbolised frame.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Frame {
    /// The address as the process saw it (hex).
    pub pc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Offset of pc in its module, for stripped code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// A frame inlined into the next one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
    /// A lock wrapper (a function that only forwards to the lock call, or
    /// one of the C++ library's): signatures and locations key on the
    /// program's frame above it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wrapper: bool,
    /// Its function is a few instructions long (not in reports).
    #[serde(skip)]
    pub tiny: bool,
}

/// Largest function, in bytes, that counts as a wrapper when a lock call
/// is all it makes. Measured with gcc 12, -O0 to -O2:
/// `void lock(L *l) { pthread_mutex_lock(&l->m); }` is 5 to 27 bytes, with
/// an `abort()` on error 22 to 36; a helper that takes two locks and
/// releases them (`transfer(a, b)`) is 47 to 67, and stays the program's.
const WRAPPER_BYTES: usize = 40;

/// Functions of the C++ library that only forward to the lock calls, and
/// usually are inlined into the program's frame (which is then the next
/// frame at the same address).
const LIBRARY_WRAPPERS: &[&str] = &[
    "__gthread_",
    "std::mutex::",
    "std::recursive_mutex::",
    "std::timed_mutex::",
    "std::recursive_timed_mutex::",
    "std::shared_mutex::",
    "std::shared_timed_mutex::",
    "std::__shared_mutex_pthread::",
    "std::__shared_mutex_cv::",
    "std::lock_guard<",
    "std::unique_lock<",
    "std::scoped_lock<",
    "std::shared_lock<",
    "std::condition_variable::",
    "std::_V2::condition_variable_any::",
    "std::__condvar::",
];

impl Frame {
    /// Whether this frame may be a lock wrapper, by itself: a library
    /// wrapper, or a tiny function of its own (not inlined: an inlined
    /// frame has no size of its own).
    fn may_wrap(&self) -> bool {
        let lib = self
            .function
            .as_deref()
            .is_some_and(|f| LIBRARY_WRAPPERS.iter().any(|w| f.starts_with(w)));
        lib || (self.tiny && !self.inlined)
    }
}

/// Marks the lock wrappers at the top of a stack (innermost first): the
/// frames, from the first, that may wrap, as long as one frame after them
/// does not (a stack made only of tiny functions has no wrapper to skip).
pub fn mark_wrappers(frames: &mut [Frame]) {
    let n = frames.iter().take_while(|f| f.may_wrap()).count();
    if n < frames.len() {
        for f in &mut frames[..n] {
            f.wrapper = true;
        }
    }
}

impl Frame {
    /// `send_warn /src/warnd.c:36`, or `module+0x1234` when nothing better.
    pub fn short(&self) -> String {
        let mut s = String::new();
        match &self.function {
            Some(f) => s.push_str(f),
            None => s.push_str(&self.pc),
        }
        match (&self.file, self.line) {
            (Some(f), Some(l)) => s.push_str(&format!(" {f}:{l}")),
            (Some(f), None) => s.push_str(&format!(" {f}")),
            _ => {
                if let (Some(m), Some(o)) = (&self.module, &self.offset) {
                    s.push_str(&format!(" ({m}+{o})"));
                }
            }
        }
        s
    }
}

pub struct Symbols {
    symbolizer: Symbolizer,
    cache: HashMap<(u32, u64), Vec<Frame>>,
    /// Module path → its separate debug file by build id, if one exists.
    debug_files: HashMap<String, Option<String>>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            symbolizer: Symbolizer::new(),
            cache: HashMap::new(),
            debug_files: HashMap::new(),
        }
    }
}

/// The separate debug file of an ELF module, found by its build id under
/// the debug directories.
fn debug_file_of(path: &str) -> Option<String> {
    use object::Object;
    if !symbolisable(path) {
        return None;
    }
    let data = std::fs::read(path).ok()?;
    let id = object::File::parse(&*data).ok()?.build_id().ok()??;
    if id.len() < 2 {
        return None;
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let dirs = std::env::var("HOLDCHECK_DEBUG_DIRS").unwrap_or_else(|_| "/usr/lib/debug".into());
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{d}/.build-id/{}/{}.debug", &hex[..2], &hex[2..]))
        .find(|p| std::path::Path::new(p).is_file())
}

impl Symbols {
    /// The frames (innermost inlined first) of a return address.
    pub fn frames(&mut self, model: &Model, pid: u32, pc: u64) -> Vec<Frame> {
        if let Some(f) = self.cache.get(&(pid, pc)) {
            return f.clone();
        }
        let frames = match model.processes.get(&pid) {
            Some(p) => self.resolve(p, pc),
            None => vec![bare(pc)],
        };
        self.cache.insert((pid, pc), frames.clone());
        frames
    }

    /// A whole recorded stack.
    pub fn stack(&mut self, model: &Model, pid: u32, stack: u64) -> Vec<Frame> {
        let pcs = model
            .processes
            .get(&pid)
            .and_then(|p| p.stacks.get(&stack))
            .cloned()
            .unwrap_or_default();
        // Stacks taken from outside (inspect) pass through the shim's hooks:
        // its frames are never shown, as in the stacks the shim records.
        let mut frames: Vec<Frame> = pcs
            .into_iter()
            .flat_map(|pc| self.frames(model, pid, pc))
            .filter(|f| !f.module.as_deref().is_some_and(is_shim))
            .collect();
        mark_wrappers(&mut frames);
        frames
    }

    fn resolve(&mut self, p: &Process, pc: u64) -> Vec<Frame> {
        let Some(m) = p
            .modules
            .iter()
            .find(|m| m.segments.iter().any(|&(s, e)| pc >= s && pc < e))
        else {
            return vec![bare(pc)];
        };
        // A segment below its module's base is damage: no offset to name.
        let Some(offset) = pc.checked_sub(m.base) else {
            return vec![bare(pc)];
        };
        // A return address points after the call: look up the call itself.
        let lookup = offset.saturating_sub(1);
        let base_frame = Frame {
            pc: format!("{pc:#x}"),
            function: None,
            file: None,
            line: None,
            module: Some(m.path.clone()),
            offset: Some(format!("{offset:#x}")),
            inlined: false,
            wrapper: false,
            tiny: false,
        };
        // A trace names the modules: only regular files of a sane size are
        // opened (a damaged or hostile trace could name /dev/zero or a FIFO).
        if !symbolisable(&m.path) {
            return vec![base_frame];
        }
        let file = self
            .debug_files
            .entry(m.path.clone())
            .or_insert_with(|| debug_file_of(&m.path))
            .clone()
            .unwrap_or_else(|| m.path.clone());
        let src = Source::Elf(Elf::new(&file));
        let Ok(sym) = self
            .symbolizer
            .symbolize_single(&src, Input::VirtOffset(lookup))
        else {
            return vec![base_frame];
        };
        let Symbolized::Sym(sym) = sym else {
            return vec![base_frame];
        };
        let mut out = Vec::new();
        // blazesym lists inlined callees outermost first; a stack shows the
        // innermost first.
        for inl in sym.inlined.iter().rev() {
            let (file, line) = code_location(inl.code_info.as_ref());
            out.push(Frame {
                function: Some(inl.name.to_string()),
                file,
                line,
                inlined: true,
                ..base_frame.clone()
            });
        }
        let (file, line) = code_location(sym.code_info.as_deref());
        out.push(Frame {
            function: Some(sym.name.to_string()),
            file,
            line,
            tiny: sym.size.is_some_and(|s| s <= WRAPPER_BYTES),
            ..base_frame
        });
        out
    }
}

fn code_location(ci: Option<&blazesym::symbolize::CodeInfo<'_>>) -> (Option<String>, Option<u32>) {
    match ci {
        Some(ci) => (Some(ci.to_path().display().to_string()), ci.line),
        None => (None, None),
    }
}

/// A frame of which only the address is known.
pub(crate) fn bare(pc: u64) -> Frame {
    Frame {
        pc: format!("{pc:#x}"),
        function: None,
        file: None,
        line: None,
        module: None,
        offset: None,
        inlined: false,
        wrapper: false,
        tiny: false,
    }
}

/// Whether a module path is a regular file of at most 2 GB.
fn symbolisable(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 2 << 30)
}

/// Whether a module is the shim.
fn is_shim(path: &str) -> bool {
    std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("libholdcheck"))
}

/// The data symbols of an ELF file (its symbol table, else its dynamic
/// one): start, size and demangled name, sorted by start.
fn data_symbols(path: &str) -> Vec<(u64, u64, String)> {
    use object::{Object, ObjectSymbol, SymbolKind};
    // A trace names its modules: only a regular file of sane size is read.
    if !symbolisable(path) {
        return Vec::new();
    }
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(obj) = object::File::parse(&*data) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, u64, String)> = obj
        .symbols()
        .chain(obj.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Data && s.size() > 0)
        .filter_map(|s| {
            let raw = s.name().ok()?;
            // Only a mangled C++ name is demangled: the demangler reads a
            // C variable called `a` or `b` as a type (`signed char`, `bool`).
            let name = raw
                .starts_with("_Z")
                .then(|| cpp_demangle::Symbol::new(raw).ok())
                .flatten()
                .and_then(|d| d.demangle().ok())
                .unwrap_or_else(|| raw.to_string());
            Some((s.address(), s.size(), name))
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Names the locks that live in a global or static variable after that
/// variable, from its module's symbols: `alarm_lock`, `forks[3]` (an array
/// of locks), `registry+0x28` (a lock inside a struct). A lock on the heap
/// or the stack keeps its address.
pub fn name_locks(model: &mut Model, syms: &mut Symbols) {
    let mut variables = Variables::default();
    let mut names = HashMap::new();
    for p in model.processes.values() {
        for (lock, meta) in &p.locks {
            // glibc's sizes: an array of locks is indexed.
            let each = match meta.kind {
                holdcheck_format::LockKind::Mutex => 40,
                holdcheck_format::LockKind::Rwlock => 56,
                holdcheck_format::LockKind::Spin => 4,
                _ => 0,
            };
            if let Some(label) = variables.label(&p.modules, lock.addr, each) {
                names.insert((p.pid, lock.addr), label);
            }
        }
    }
    // The others by where they were made: their init, else where they
    // were first held.
    let mut origins = HashMap::new();
    for p in model.processes.values() {
        for (lock, meta) in &p.locks {
            if names.contains_key(&(p.pid, lock.addr))
                || meta.kind == holdcheck_format::LockKind::File
            {
                continue;
            }
            let (how, pc) = match (meta.init, p.first_held_at.get(lock)) {
                (Some(pc), _) => (crate::report::ORIGIN_INIT, pc),
                (None, Some(&pc)) => (crate::report::ORIGIN_FIRST_HELD, pc),
                (None, None) => continue,
            };
            if let Some(at) = site_frame(syms, model, p.pid, Some(pc)) {
                let how = how.to_string();
                origins.insert((p.pid, *lock), crate::report::LockOrigin { how, at });
            }
        }
    }
    model.lock_names = names;
    model.lock_origins = origins;
}

/// The data symbols of each module read so far, by path: read once per
/// module, however many objects are named in it.
#[derive(Default)]
pub struct Variables(HashMap<String, Vec<(u64, u64, String)>>);

impl Variables {
    /// The variable an object of `each` bytes at `addr` lives in, by its
    /// module's symbols: `alarm_lock`, `forks[3]` (an array of such
    /// objects), `registry+0x28` (one inside a struct); None on the heap or
    /// the stack. `modules` are its process's.
    pub fn label(
        &mut self,
        modules: &[crate::model::Module],
        addr: u64,
        each: u64,
    ) -> Option<String> {
        let m = modules
            .iter()
            .find(|m| m.segments.iter().any(|&(s, e)| addr >= s && addr < e))?;
        let vaddr = addr.checked_sub(m.base)?;
        let syms = self.0.entry(m.path.clone()).or_insert_with(|| {
            let file = debug_file_of(&m.path);
            let mut v = data_symbols(&m.path);
            if v.is_empty() {
                v = file.as_deref().map(data_symbols).unwrap_or_default();
            }
            v
        });
        let i = syms.partition_point(|s| s.0 <= vaddr);
        let (start, size, name) = i.checked_sub(1).map(|i| &syms[i])?;
        let off = vaddr - start;
        if off >= *size {
            return None;
        }
        Some(
            if off == 0 && (*size == each || each == 0 || size % each != 0) {
                name.clone()
            } else if each != 0 && size % each == 0 && off % each == 0 {
                format!("{name}[{}]", off / each)
            } else {
                format!("{name}+{off:#x}")
            },
        )
    }
}

fn in_libc(f: &Frame) -> bool {
    f.module.as_deref().is_some_and(|m| {
        m.contains("/libc.so") || m.contains("/libpthread") || m.contains("/ld-linux")
    })
}

/// The first frame of a stack that is neither inside libc/libpthread nor
/// a lock wrapper: where the program made the call.
pub fn program_frame(frames: &[Frame]) -> Option<Frame> {
    frames
        .iter()
        .find(|f| !in_libc(f) && !f.wrapper)
        .or_else(|| frames.iter().find(|f| !in_libc(f)))
        .or_else(|| frames.first())
        .cloned()
}

/// The frames of one return address (its inlined frames first), with the
/// C++ library's lock wrappers inlined there marked.
pub(crate) fn site_frames(syms: &mut Symbols, model: &Model, pid: u32, pc: u64) -> Vec<Frame> {
    let mut frames = syms.frames(model, pid, pc);
    mark_wrappers(&mut frames);
    frames
}

/// Where a lock was taken: the program's frame at that return address.
pub(crate) fn site_frame(
    syms: &mut Symbols,
    model: &Model,
    pid: u32,
    pc: Option<u64>,
) -> Option<Frame> {
    pc.filter(|&p| p != 0)
        .and_then(|p| program_frame(&site_frames(syms, model, pid, p)))
}
