//! Kernel socket queries shared by the shim (its own sockets) and
//! `holdcheck inspect` (another process's): made with raw system calls, so
//! the shim's interposed `send`/`recv` never see them.

use core::ffi::c_int;
use core::mem::size_of;

/// Asks the kernel (sock_diag, `UDIAG_SHOW_PEER`) for the inode of a unix
/// socket's peer. Raw syscalls: the shim's own send/recv must not be hooked.
pub fn unix_peer_inode(ino: u64) -> Option<u64> {
    const NETLINK_SOCK_DIAG: c_int = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const UDIAG_SHOW_PEER: u32 = 0x4;
    const UNIX_DIAG_PEER: u16 = 2;

    #[repr(C)]
    struct Request {
        // nlmsghdr
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        // unix_diag_req
        family: u8,
        protocol: u8,
        pad: u16,
        states: u32,
        ino: u32,
        show: u32,
        cookie: [u32; 2],
    }
    let req = Request {
        len: size_of::<Request>() as u32,
        kind: SOCK_DIAG_BY_FAMILY,
        flags: libc::NLM_F_REQUEST as u16,
        seq: 1,
        pid: 0,
        family: libc::AF_UNIX as u8,
        protocol: 0,
        pad: 0,
        states: u32::MAX,
        ino: ino as u32,
        show: UDIAG_SHOW_PEER,
        cookie: [u32::MAX; 2],
    };
    // SAFETY: raw syscalls on a socket this function owns and closes; every
    // buffer is a local of the stated size.
    unsafe {
        let s = libc::syscall(
            libc::SYS_socket,
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        ) as c_int;
        if s < 0 {
            return None;
        }
        let mut buf = [0u8; 1024];
        let sent = libc::syscall(
            libc::SYS_sendto,
            s,
            &req as *const Request,
            size_of::<Request>(),
            0,
            0,
            0,
        );
        let got = if sent > 0 {
            libc::syscall(libc::SYS_recvfrom, s, buf.as_mut_ptr(), buf.len(), 0, 0, 0)
        } else {
            -1
        };
        libc::syscall(libc::SYS_close, s);
        if got < 16 + 16 {
            return None;
        }
        parse_peer_reply(&buf[..got as usize], UNIX_DIAG_PEER)
    }
}

/// Finds the u32 `UNIX_DIAG_PEER` attribute in a sock_diag reply:
/// nlmsghdr (16) + unix_diag_msg (16) + rtattrs.
fn parse_peer_reply(buf: &[u8], attr: u16) -> Option<u64> {
    let msg_type = u16::from_ne_bytes([buf[4], buf[5]]);
    if msg_type == libc::NLMSG_ERROR as u16 {
        return None;
    }
    let msg_len = (u32::from_ne_bytes(buf[0..4].try_into().ok()?) as usize).min(buf.len());
    let mut off = 32;
    while off + 4 <= msg_len {
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]);
        if len < 4 {
            return None;
        }
        if kind == attr && len >= 8 && off + 8 <= msg_len {
            let v = u32::from_ne_bytes(buf[off + 4..off + 8].try_into().ok()?);
            return (v != 0).then_some(v as u64);
        }
        off += (len + 3) & !3;
    }
    None
}
