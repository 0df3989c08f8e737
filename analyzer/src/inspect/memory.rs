//! Reading another process's memory, never writing it.

use super::procfs::via;
use anyhow::{bail, Result};
use std::os::unix::fs::FileExt;

/// Reads `len` bytes at `addr` of process `pid`: `process_vm_readv`, else
/// `/proc/PID/mem`.
pub fn read(pid: u32, addr: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: both iovecs describe valid buffers of `len` bytes (the remote
    // one is checked by the kernel).
    let n = unsafe {
        libc::process_vm_readv(
            super::procfs::via(pid) as libc::pid_t,
            &local,
            1,
            &remote,
            1,
            0,
        )
    };
    if n == len as isize {
        return Ok(buf);
    }
    let f = std::fs::File::open(format!("/proc/{}/mem", via(pid)))?;
    f.read_exact_at(&mut buf, addr)?;
    Ok(buf)
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Reads a u32 field, failing clearly.
pub fn read_u32(pid: u32, addr: u64) -> Result<u32> {
    let b = read(pid, addr, 4)?;
    if b.len() < 4 {
        bail!("short read at {addr:#x}");
    }
    Ok(u32_at(&b, 0))
}
