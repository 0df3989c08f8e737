//! The real libc/libpthread functions behind the interposers.
//!
//! Every function is resolved at once, with `dlsym(RTLD_NEXT, …)`, by the
//! shim's constructor or by the first interposed call that comes before it
//! (from another library's constructor), and cached in an atomic. Never one
//! by one on first use: `dlsym` takes the loader's lock, which a `dlopen`
//! holds while it runs a library's constructors, and a constructor that
//! waits for a thread it started would wait for ever on that thread's first
//! call of a function not resolved yet. The condvar functions are
//! resolved with an explicit symbol version: old binaries bind to the
//! GLIBC_2.2.5 compat condvar, which is a different function.

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use libc::{iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};

type P = *mut c_void;

fn resolve(
    slot: &AtomicUsize,
    target: &AtomicPtr<()>,
    name: &'static [u8],
    version: Option<&'static [u8]>,
) -> usize {
    // SAFETY: name and version are NUL-terminated literals.
    let p = unsafe {
        match version {
            Some(v) => libc::dlvsym(
                libc::RTLD_NEXT,
                name.as_ptr() as *const c_char,
                v.as_ptr() as *const c_char,
            ),
            None => libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char),
        }
    } as usize;
    // A function this libc lacks (an old glibc's close_range) is only an
    // error if the program calls it, which it then cannot have linked.
    if p == 0 {
        // The target stays the trampoline, whose resolution aborts.
        slot.store(MISSING, Ordering::Relaxed);
        return MISSING;
    }
    slot.store(p, Ordering::Relaxed);
    target.store(p as *mut (), Ordering::Relaxed);
    p
}

/// A slot's value for a function the next objects do not define.
const MISSING: usize = 1;

#[cold]
fn missing(name: &'static [u8]) -> ! {
    // Nothing to pass the call to: there is no safe way on.
    crate::sys::say_bytes(b"holdcheck: cannot resolve a libc function; aborting: ");
    crate::sys::say_bytes(&name[..name.len() - 1]);
    crate::sys::say_bytes(b"\n");
    unsafe { libc::abort() }
}

/// The real `free`, if resolved: a `free` that comes while the functions
/// are being resolved (from `dlsym` itself) cannot resolve it, and leaks
/// its block rather than recurse.
pub fn free_if_resolved() -> Option<unsafe extern "C-unwind" fn(P)> {
    let p = slots::free.load(Ordering::Relaxed);
    if p <= MISSING {
        if RESOLVING.load(Ordering::Acquire) {
            return None;
        }
        return Some(free());
    }
    // SAFETY: the address of libc's (or the next allocator's) free.
    Some(unsafe { core::mem::transmute::<usize, unsafe extern "C-unwind" fn(P)>(p) })
}

/// Set while one thread resolves them all; a call made meanwhile (from
/// `dlsym` itself, or another thread) resolves its own function alone.
static RESOLVING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

macro_rules! real_fns {
    ($( $name:ident $(@ $ver:literal)? : fn($($arg:ty),*) -> $ret:ty; )*) => {
        /// Per function, its resolution: 0 until resolved, then its
        /// address, or [`MISSING`].
        mod slots {
            use core::sync::atomic::AtomicUsize;
            $( #[allow(non_upper_case_globals)] pub static $name: AtomicUsize = AtomicUsize::new(0); )*
        }
        /// Per function, what a hook jumps to: its trampoline in
        /// [`unresolved`] until it is resolved, then the function itself.
        /// One load and an indirect jump, with no test on the hook's path.
        mod targets {
            use core::sync::atomic::AtomicPtr;
            $(
                #[allow(non_upper_case_globals)]
                pub static $name: AtomicPtr<()> = AtomicPtr::new(super::unresolved::$name as *mut ());
            )*
        }
        /// Resolves every real function not resolved yet.
        #[cold]
        pub fn resolve_all() {
            if RESOLVING.swap(true, Ordering::Acquire) {
                return;
            }
            $(
                if slots::$name.load(Ordering::Relaxed) == 0 {
                    let version: Option<&'static [u8]> = None $(.or(Some(concat!($ver, "\0").as_bytes())))?;
                    resolve(&slots::$name, &targets::$name, concat!(stringify!($name), "\0").as_bytes(), version);
                }
            )*
            RESOLVING.store(false, Ordering::Release);
        }
        /// Per function, what a hook jumps to while it is not resolved
        /// (its [`targets`] entry): a trampoline that resolves it and
        /// jumps to it, so that a hook's real call is a load and a jump (a
        /// call to resolve in place would make every hook save the
        /// registers its arguments are in, a store each, on its fast path
        /// too). It saves every argument register (the vector ones too,
        /// and `al` of a variadic call) and leaves the stack as it found
        /// it, so the resolved function gets the call exactly as made; it
        /// is gone from the stack before that function runs.
        mod unresolved {
            $(
                #[unsafe(naked)]
                #[allow(non_upper_case_globals)]
                pub unsafe extern "C" fn $name() {
                    core::arch::naked_asm!(
                        // Entered with rsp 8 past a 16-byte boundary: seven
                        // pushes and 128 bytes align it for the call.
                        "push rdi", "push rsi", "push rdx", "push rcx",
                        "push r8", "push r9", "push rax",
                        "sub rsp, 128",
                        "movdqu [rsp], xmm0", "movdqu [rsp + 16], xmm1",
                        "movdqu [rsp + 32], xmm2", "movdqu [rsp + 48], xmm3",
                        "movdqu [rsp + 64], xmm4", "movdqu [rsp + 80], xmm5",
                        "movdqu [rsp + 96], xmm6", "movdqu [rsp + 112], xmm7",
                        "call {resolve}",
                        "mov r11, rax",
                        "movdqu xmm0, [rsp]", "movdqu xmm1, [rsp + 16]",
                        "movdqu xmm2, [rsp + 32]", "movdqu xmm3, [rsp + 48]",
                        "movdqu xmm4, [rsp + 64]", "movdqu xmm5, [rsp + 80]",
                        "movdqu xmm6, [rsp + 96]", "movdqu xmm7, [rsp + 112]",
                        "add rsp, 128",
                        "pop rax", "pop r9", "pop r8", "pop rcx",
                        "pop rdx", "pop rsi", "pop rdi",
                        "jmp r11",
                        resolve = sym super::resolvers::$name,
                    )
                }
            )*
        }
        /// Per function, its resolution from its trampoline: all of them
        /// at once when none is yet, else this one alone (while another
        /// thread, or `dlsym` itself, resolves them all); aborts when this
        /// libc lacks it. Also for code that needs the real function's
        /// address itself, not one that jumps to it.
        pub mod resolvers {
            use super::*;
            $(
                #[allow(non_upper_case_globals)]
                pub extern "C" fn $name() -> usize {
                    let mut p = slots::$name.load(Ordering::Relaxed);
                    let name = concat!(stringify!($name), "\0").as_bytes();
                    if p == 0 {
                        resolve_all();
                        p = slots::$name.load(Ordering::Relaxed);
                    }
                    if p == 0 {
                        let version: Option<&'static [u8]> = None $(.or(Some(concat!($ver, "\0").as_bytes())))?;
                        p = resolve(&slots::$name, &targets::$name, name, version);
                    }
                    if p == MISSING {
                        missing(name);
                    }
                    p
                }
            )*
        }
        $(
            /// The next definition of this symbol after the shim's (its
            /// trampoline in [`unresolved`] until it is resolved).
            #[inline(always)]
            pub fn $name() -> unsafe extern "C-unwind" fn($($arg),*) -> $ret {
                let p = targets::$name.load(Ordering::Relaxed);
                // SAFETY: p is the address of the libc function of this name
                // and signature, or of its trampoline, which jumps to it.
                unsafe { core::mem::transmute::<*mut (), unsafe extern "C-unwind" fn($($arg),*) -> $ret>(p) }
            }
        )*
    };
}

real_fns! {
    pthread_mutex_lock: fn(P) -> c_int;
    pthread_mutex_trylock: fn(P) -> c_int;
    pthread_mutex_timedlock: fn(P, *const timespec) -> c_int;
    pthread_mutex_clocklock: fn(P, c_int, *const timespec) -> c_int;
    pthread_mutex_unlock: fn(P) -> c_int;
    pthread_mutex_init: fn(P, *const c_void) -> c_int;
    pthread_mutex_destroy: fn(P) -> c_int;

    pthread_rwlock_rdlock: fn(P) -> c_int;
    pthread_rwlock_wrlock: fn(P) -> c_int;
    pthread_rwlock_tryrdlock: fn(P) -> c_int;
    pthread_rwlock_trywrlock: fn(P) -> c_int;
    pthread_rwlock_timedrdlock: fn(P, *const timespec) -> c_int;
    pthread_rwlock_timedwrlock: fn(P, *const timespec) -> c_int;
    pthread_rwlock_clockrdlock: fn(P, c_int, *const timespec) -> c_int;
    pthread_rwlock_clockwrlock: fn(P, c_int, *const timespec) -> c_int;
    pthread_rwlock_unlock: fn(P) -> c_int;
    pthread_rwlock_init: fn(P, *const c_void) -> c_int;
    pthread_rwlock_destroy: fn(P) -> c_int;

    pthread_spin_lock: fn(P) -> c_int;
    pthread_spin_trylock: fn(P) -> c_int;
    pthread_spin_unlock: fn(P) -> c_int;
    pthread_spin_init: fn(P, c_int) -> c_int;
    pthread_spin_destroy: fn(P) -> c_int;

    pthread_cond_wait @ "GLIBC_2.3.2": fn(P, P) -> c_int;
    pthread_cond_timedwait @ "GLIBC_2.3.2": fn(P, P, *const timespec) -> c_int;
    pthread_cond_clockwait @ "GLIBC_2.30": fn(P, P, c_int, *const timespec) -> c_int;
    pthread_cond_signal @ "GLIBC_2.3.2": fn(P) -> c_int;
    pthread_cond_broadcast @ "GLIBC_2.3.2": fn(P) -> c_int;
    pthread_cond_init @ "GLIBC_2.3.2": fn(P, *const c_void) -> c_int;
    pthread_cond_destroy @ "GLIBC_2.3.2": fn(P) -> c_int;

    sem_wait: fn(P) -> c_int;
    sem_timedwait: fn(P, *const timespec) -> c_int;
    sem_clockwait: fn(P, c_int, *const timespec) -> c_int;
    sem_post: fn(P) -> c_int;
    sem_init: fn(P, c_int, c_uint) -> c_int;
    sem_destroy: fn(P) -> c_int;

    pthread_create: fn(*mut libc::pthread_t, *const libc::pthread_attr_t, P, P) -> c_int;
    pthread_join: fn(libc::pthread_t, *mut P) -> c_int;
    pthread_tryjoin_np: fn(libc::pthread_t, *mut P) -> c_int;
    pthread_timedjoin_np: fn(libc::pthread_t, *mut P, *const timespec) -> c_int;
    pthread_clockjoin_np: fn(libc::pthread_t, *mut P, c_int, *const timespec) -> c_int;
    pthread_setname_np: fn(libc::pthread_t, *const c_char) -> c_int;
    prctl: fn(c_int, libc::c_ulong, libc::c_ulong, libc::c_ulong, libc::c_ulong) -> c_int;

    execve: fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    execv: fn(*const c_char, *const *const c_char) -> c_int;
    execvp: fn(*const c_char, *const *const c_char) -> c_int;
    execvpe: fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
    posix_spawn: fn(*mut libc::pid_t, *const c_char, P, P, *const *const c_char, *const *const c_char) -> c_int;
    posix_spawnp: fn(*mut libc::pid_t, *const c_char, P, P, *const *const c_char, *const *const c_char) -> c_int;
    sigaction: fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;

    send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
    sendto: fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t;
    sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t;
    sendmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int;
    recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t;
    recvfrom: fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t;
    recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t;
    recvmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int, *mut timespec) -> c_int;
    read: fn(c_int, *mut c_void, size_t) -> ssize_t;
    write: fn(c_int, *const c_void, size_t) -> ssize_t;
    readv: fn(c_int, *const iovec, c_int) -> ssize_t;
    writev: fn(c_int, *const iovec, c_int) -> ssize_t;

    connect: fn(c_int, *const sockaddr, socklen_t) -> c_int;
    accept: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
    accept4: fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
    poll: fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;
    ppoll: fn(*mut libc::pollfd, libc::nfds_t, *const timespec, *const libc::sigset_t) -> c_int;
    select: fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *mut libc::timeval) -> c_int;
    pselect: fn(c_int, *mut libc::fd_set, *mut libc::fd_set, *mut libc::fd_set, *const timespec, *const libc::sigset_t) -> c_int;
    epoll_wait: fn(c_int, *mut libc::epoll_event, c_int, c_int) -> c_int;
    epoll_pwait: fn(c_int, *mut libc::epoll_event, c_int, c_int, *const libc::sigset_t) -> c_int;
    flock: fn(c_int, c_int) -> c_int;
    fcntl: fn(c_int, c_int, usize) -> c_int;
    fcntl64: fn(c_int, c_int, usize) -> c_int;
    close: fn(c_int) -> c_int;
    fclose: fn(*mut libc::FILE) -> c_int;
    ioctl: fn(c_int, libc::c_ulong, usize) -> c_int;
    dup2: fn(c_int, c_int) -> c_int;
    dup3: fn(c_int, c_int, c_int) -> c_int;
    close_range: fn(libc::c_uint, libc::c_uint, c_int) -> c_int;
    waitpid: fn(libc::pid_t, *mut c_int, c_int) -> libc::pid_t;
    free: fn(P) -> ();
    dlclose: fn(P) -> c_int;
    malloc_usable_size: fn(P) -> size_t;
    wait4: fn(libc::pid_t, *mut c_int, c_int, *mut libc::rusage) -> libc::pid_t;
    _dl_find_object: fn(P, P) -> c_int;
}

/// glibc's `_dl_find_object` (2.35 and later: which loaded object an
/// address is in, without the loader's lock), if this libc has it.
pub fn dl_find_object() -> Option<unsafe extern "C-unwind" fn(P, P) -> c_int> {
    let mut p = slots::_dl_find_object.load(Ordering::Relaxed);
    if p == 0 {
        resolve_all();
        p = slots::_dl_find_object.load(Ordering::Relaxed);
    }
    // SAFETY: the address of glibc's _dl_find_object.
    (p > MISSING).then(|| unsafe {
        core::mem::transmute::<usize, unsafe extern "C-unwind" fn(P, P) -> c_int>(p)
    })
}
