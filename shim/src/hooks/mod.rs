//! The interposed entry points. Each one passes the call through untouched
//! when the shim is off or already running on this thread; otherwise it does
//! its bookkeeping around the real call. On the uncontended fast path a few
//! lock calls are made in place instead, with the same stores glibc 2.36
//! would make (`crate::locks`: a normal mutex's try, its lock while the
//! process has one thread, its unlock; an rwlock's try and read unlock in
//! the states where glibc's is one compare-and-swap that wakes nobody).
//!
//! Every hook is `extern "C-unwind"`: `pthread_cancel` of a thread blocked in
//! a cancellation point (`read`, `recv`, `pthread_cond_wait`, …) unwinds
//! through it, so no hook holds anything with a destructor across the real
//! call.

mod cond;
mod connection;
mod dlclose;
mod exec;
mod filelock;
mod free;
mod io;
mod locking;
mod mutex;
mod poll;
mod rwlock;
mod sem;
mod signal;
mod spin;
mod thread_create;
mod thread_name;
mod wait;

pub use free::settle as settle_free;

/// Defines an exported function that jumps to `$imp` with the caller's
/// return address as one extra argument in register `$reg` (the first free
/// argument register). The lock hooks learn their call site for free this
/// way, without unwinding: the trampoline leaves no frame of its own.
macro_rules! with_caller_pc {
    ($( fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $imp:path, $reg:literal; )*) => {
        $(
            #[unsafe(naked)]
            #[no_mangle]
            pub unsafe extern "C-unwind" fn $name($($arg: $ty),*) -> $ret {
                core::arch::naked_asm!(
                    concat!("mov ", $reg, ", [rsp]"),
                    "jmp {imp}",
                    imp = sym $imp,
                )
            }
        )*
    };
}
pub(crate) use with_caller_pc;
