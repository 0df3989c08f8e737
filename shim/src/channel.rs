//! Which kernel queue a blocking-capable call waits on.
//!
//! A channel names the *receive queue* (see `holdcheck_format::Channel`): a
//! send lands in the peer's queue, a receive drains the socket's own. Both
//! ends of one queue resolve to the same identity, in any process.

use crate::sync::ForkMutex;
use core::ffi::c_int;
use core::mem::{size_of, zeroed};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use holdcheck_format::{Channel, Direction};
use libc::{sockaddr, sockaddr_storage, socklen_t};
use rustix::fd::BorrowedFd;
use std::collections::HashMap;

/// Where a send is addressed, when the call names it.
#[derive(Clone, Copy)]
pub struct Dest {
    pub addr: *const sockaddr,
    pub len: socklen_t,
}

impl Dest {
    pub const NONE: Dest = Dest {
        addr: core::ptr::null(),
        len: 0,
    };
}

/// What the shim learnt of a socket, by (dev, inode): family, type and
/// protocol never change, and the peer of a connected socket rarely does.
#[derive(Clone, Copy)]
struct SockInfo {
    family: c_int,
    sotype: c_int,
    protocol: c_int,
    peer_inode: u64,
}

static SOCKETS: ForkMutex<Option<HashMap<(u64, u64), SockInfo>>> = ForkMutex::new(None);

/// The channel a blocking-capable call on `fd` waits on, or None when the
/// call cannot block on another party (a regular file, a terminal, an
/// `O_NONBLOCK` descriptor, an unknown socket family); with the
/// descriptor's stamp when the channel is cached for its life (see
/// [`fd_stamp`]).
pub fn resolve_stamped(
    fd: c_int,
    dir: Direction,
    dest: Dest,
) -> Option<(Channel, Option<(u32, u64)>)> {
    resolve_with(fd, dir, dest, false)
}

/// The channel a poll on `fd` waits on: as [`resolve_stamped`], but an
/// `O_NONBLOCK` descriptor counts (the poll itself blocks).
pub fn resolve_polled(fd: c_int, dir: Direction) -> Option<Channel> {
    resolve_with(fd, dir, Dest::NONE, true).map(|(c, _)| c)
}

fn resolve_with(
    fd: c_int,
    dir: Direction,
    dest: Dest,
    polled: bool,
) -> Option<(Channel, Option<(u32, u64)>)> {
    if !polled && known_nonblocking_socket(fd) {
        return None;
    }
    // A call that names no destination resolves its descriptor's channel
    // once per descriptor life (a blocking call on a known descriptor is
    // a table lookup, not three system calls).
    let stamp = (dest.addr.is_null() && !polled)
        .then(|| fd_stamp(fd))
        .flatten();
    if let Some(hit) = stamp.and_then(|s| cached(fd, dir, s)) {
        return hit.map(|c| (c, stamp));
    }
    let (found, stable) = resolve_fresh(fd, dir, dest, polled);
    if let (Some(s), true) = (stamp, stable) {
        store(fd, dir, s, found.clone());
        return found.map(|c| (c, Some(s)));
    }
    found.map(|c| (c, None))
}

/// [`resolve_with`] asking the kernel; and whether the answer holds for
/// the descriptor's life (until it is closed, replaced, connected or its
/// flags change): not after an error, nor for a connection its server has
/// not accepted yet, nor for UDP (a socket is bound by its first send).
fn resolve_fresh(fd: c_int, dir: Direction, dest: Dest, polled: bool) -> (Option<Channel>, bool) {
    // SAFETY: fd is the caller's descriptor for the duration of the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(st) = rustix::fs::fstat(bfd) else {
        return (None, false);
    };
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFSOCK && fmt != libc::S_IFIFO {
        return (None, true);
    }
    let (dev, ino) = (st.st_dev, st.st_ino);
    if !polled && nonblocking_socket_or_pipe(fd, fmt, dev, ino) {
        return (None, true);
    }
    if fmt == libc::S_IFIFO {
        let chan = if is_anonymous_pipe(fd, dev, ino) {
            Channel::Pipe { inode: ino }
        } else {
            Channel::Fifo { dev, inode: ino }
        };
        return (Some(chan), true);
    }
    let Some(info) = sock_info(fd, dev, ino) else {
        return (None, false);
    };
    let found = match info.family {
        libc::AF_NETLINK => netlink(fd, dir, dest, info),
        libc::AF_UNIX => unix(fd, dir, dest, ino, info),
        libc::AF_INET | libc::AF_INET6 => inet(fd, dir, dest, info),
        _ => return (None, true),
    };
    let stable = matches!(
        found,
        Some(Channel::Unix { from: None, .. } | Channel::Netlink { .. } | Channel::Tcp { .. })
    );
    (found, stable)
}

/// Descriptors whose channels are cached: the generation of each (bumped
/// by every call that changes what it is) and the blocking flags'.
const CACHED_FDS: usize = 4096;
static FD_GEN: [AtomicU32; CACHED_FDS] = [const { AtomicU32::new(0) }; CACHED_FDS];

/// A descriptor's channel per direction (send, receive), as resolved in
/// the generations it was resolved in; None inside: not a channel.
struct FdChannels {
    stamp: (u32, u64),
    chans: [Option<Option<Channel>>; 2],
}

static FD_CHANNELS: ForkMutex<Vec<Option<FdChannels>>> = ForkMutex::new(Vec::new());

/// A descriptor's generation and the blocking flags': equal stamps, the
/// same channel.
pub fn fd_stamp(fd: c_int) -> Option<(u32, u64)> {
    let gen = FD_GEN.get(usize::try_from(fd).ok()?)?;
    Some((
        gen.load(Ordering::Acquire),
        FLAGS_GEN.load(Ordering::Acquire),
    ))
}

fn cached(fd: c_int, dir: Direction, stamp: (u32, u64)) -> Option<Option<Channel>> {
    let g = FD_CHANNELS.lock();
    let e = g.get(fd as usize)?.as_ref()?;
    if e.stamp != stamp {
        return None;
    }
    e.chans[dir as usize].clone()
}

fn store(fd: c_int, dir: Direction, stamp: (u32, u64), found: Option<Channel>) {
    let mut g = FD_CHANNELS.lock();
    if g.len() <= fd as usize {
        g.resize_with(fd as usize + 1, || None);
    }
    let e = g[fd as usize].get_or_insert(FdChannels {
        stamp,
        chans: [None, None],
    });
    if e.stamp != stamp {
        *e = FdChannels {
            stamp,
            chans: [None, None],
        };
    }
    e.chans[dir as usize] = Some(found);
}

/// What `fd` is may have changed (closed, replaced, connected, accepted,
/// closed by `fclose`): its channel is resolved again.
pub fn fd_changed(fd: c_int) {
    if let Some(g) = usize::try_from(fd).ok().and_then(|i| FD_GEN.get(i)) {
        g.fetch_add(1, Ordering::Release);
    }
}

/// Whether a socket's descriptor is `O_NONBLOCK`, remembered per socket:
/// an event loop's every read and write would otherwise ask the kernel.
/// The flag belongs to the open socket, so it is remembered by (device,
/// inode); `fcntl(F_SETFL)` and `ioctl(FIONBIO)` forget everything.
/// FIFOs (one inode, several opens with their own flags) are always asked.
fn nonblocking_socket_or_pipe(fd: c_int, fmt: u32, dev: u64, ino: u64) -> bool {
    if fmt != libc::S_IFSOCK {
        return is_nonblocking(fd);
    }
    let key = crate::thread::mix(
        crate::thread::mix(dev, ino),
        FLAGS_GEN.load(Ordering::Relaxed),
    );
    // Bit 0 holds the flag; bit 1 set keeps a used slot non-zero.
    let tag = (key | 2) & !1;
    let slot = &NONBLOCK_CACHE[(key as usize >> 2) % NONBLOCK_CACHE.len()];
    let seen = slot.load(Ordering::Relaxed);
    if seen & !1 == tag {
        return seen & 1 == 1;
    }
    let nb = is_nonblocking(fd);
    slot.store(tag | nb as u64, Ordering::Relaxed);
    if nb {
        remember_nonblocking_socket(fd);
    }
    nb
}

/// Descriptors known to be `O_NONBLOCK` sockets, by number: an event
/// loop's reads and writes pass through without a system call. An entry
/// holds the flags generation it was seen in; `close`, `dup2` and `dup3`
/// clear the descriptor's. (A descriptor closed inside libc, unseen, and
/// reused for a blocking socket would be passed through: facts missed,
/// never harm.)
static NONBLOCKING_FDS: [AtomicU64; 4096] = [const { AtomicU64::new(0) }; 4096];

fn known_nonblocking_socket(fd: c_int) -> bool {
    let gen = FLAGS_GEN.load(Ordering::Relaxed);
    usize::try_from(fd)
        .ok()
        .and_then(|i| NONBLOCKING_FDS.get(i))
        .is_some_and(|e| e.load(Ordering::Relaxed) == gen)
}

fn remember_nonblocking_socket(fd: c_int) {
    if let Some(e) = usize::try_from(fd)
        .ok()
        .and_then(|i| NONBLOCKING_FDS.get(i))
    {
        e.store(FLAGS_GEN.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// `fd` was closed or replaced: whatever it was is forgotten.
pub fn fd_closed(fd: c_int) {
    fd_changed(fd);
    if let Some(e) = usize::try_from(fd)
        .ok()
        .and_then(|i| NONBLOCKING_FDS.get(i))
    {
        e.store(0, Ordering::Relaxed);
    }
}

/// Direct-mapped cache of sockets' `O_NONBLOCK` flags: (key | flag).
static NONBLOCK_CACHE: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];
/// Bumped when a descriptor's flags may have changed.
static FLAGS_GEN: AtomicU64 = AtomicU64::new(1);

/// A descriptor's blocking flag may have changed: forget them all.
pub fn flags_changed() {
    FLAGS_GEN.fetch_add(1, Ordering::Relaxed);
}

/// Whether calls on `fd` return at once instead of waiting.
pub fn is_nonblocking(fd: c_int) -> bool {
    // SAFETY: fd is the caller's descriptor for the duration of the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::fs::fcntl_getfl(bfd).map_or(true, |f| f.contains(rustix::fs::OFlags::NONBLOCK))
}

/// The accept queue a `connect` to `addr` waits on: a unix path or
/// abstract name, or a TCP port on this host. None for another host.
pub fn listen_of_addr(addr: *const sockaddr, len: socklen_t) -> Option<Channel> {
    let (ss, len) = dest_addr(Dest { addr, len })?;
    listen_channel(&ss, len, true)
}

/// The accept queue of the listening socket `fd`.
pub fn listen_of_fd(fd: c_int) -> Option<Channel> {
    let (ss, len) = sockname(fd, libc::getsockname)?;
    listen_channel(&ss, len, false)
}

fn listen_channel(ss: &sockaddr_storage, len: socklen_t, connecting: bool) -> Option<Channel> {
    let addr = match family_of(ss) {
        libc::AF_UNIX => format!("unix:{}", unix_path(ss, len)?),
        libc::AF_INET | libc::AF_INET6 => {
            let text = inet_string(ss)?;
            let (host, port) = text.rsplit_once(':')?;
            // A connect reaches this host only through a loopback (or
            // this host's) address; one to another host is not ours.
            if connecting {
                let ip: std::net::IpAddr = host.trim_matches(['[', ']']).parse().ok()?;
                if !ip.is_loopback() && !ip.is_unspecified() {
                    return None;
                }
            }
            format!("tcp:{port}")
        }
        _ => return None,
    };
    Some(Channel::Listen { addr })
}

/// A connection just accepted on a unix socket: its peer (the client's
/// socket, alive now) is learnt at once.
pub fn note_accepted(fd: c_int) {
    // SAFETY: fd was just returned by accept.
    let Ok(st) = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(fd) }) else {
        return;
    };
    if let Some(info) = sock_info(fd, st.st_dev, st.st_ino) {
        if info.family == libc::AF_UNIX && info.sotype != libc::SOCK_DGRAM {
            note_peer(fd, st.st_ino, info);
        }
    }
}

static PIPES: ForkMutex<Option<HashMap<(u64, u64), bool>>> = ForkMutex::new(None);

/// Whether a FIFO descriptor is an anonymous pipe (pipefs) rather than a
/// named FIFO; asked of /proc once per pipe.
fn is_anonymous_pipe(fd: c_int, dev: u64, ino: u64) -> bool {
    if let Some(&anon) = PIPES.lock().as_ref().and_then(|m| m.get(&(dev, ino))) {
        return anon;
    }
    let anon = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().starts_with("pipe:"))
        .unwrap_or(false);
    PIPES
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert((dev, ino), anon);
    anon
}

fn sock_info(fd: c_int, dev: u64, ino: u64) -> Option<SockInfo> {
    if let Some(i) = SOCKETS
        .lock()
        .as_ref()
        .and_then(|m| m.get(&(dev, ino)).copied())
    {
        return Some(i);
    }
    let (local, _) = sockname(fd, libc::getsockname)?;
    let info = SockInfo {
        // SAFETY: sockname returned an initialised address.
        family: unsafe { (*(&local as *const sockaddr_storage as *const sockaddr)).sa_family }
            as c_int,
        sotype: sockopt(fd, libc::SO_TYPE)?,
        protocol: sockopt(fd, libc::SO_PROTOCOL).unwrap_or(0),
        peer_inode: 0,
    };
    SOCKETS
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert((dev, ino), info);
    Some(info)
}

fn remember_peer(dev: u64, ino: u64, peer: u64) {
    if let Some(i) = SOCKETS.lock().as_mut().and_then(|m| m.get_mut(&(dev, ino))) {
        i.peer_inode = peer;
    }
}

type NameFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;

fn sockname(fd: c_int, f: NameFn) -> Option<(sockaddr_storage, socklen_t)> {
    // SAFETY: the buffer is a zeroed sockaddr_storage of the stated size.
    unsafe {
        let mut ss: sockaddr_storage = zeroed();
        let mut len = size_of::<sockaddr_storage>() as socklen_t;
        (f(fd, &mut ss as *mut _ as *mut sockaddr, &mut len) == 0).then_some((ss, len))
    }
}

fn sockopt(fd: c_int, opt: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: v and len describe a c_int buffer.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &mut v as *mut c_int as *mut _,
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

/// Copies a caller's address (of any length up to sockaddr_storage).
fn dest_addr(dest: Dest) -> Option<(sockaddr_storage, socklen_t)> {
    if dest.addr.is_null() || dest.len == 0 {
        return None;
    }
    let len = (dest.len as usize).min(size_of::<sockaddr_storage>());
    // SAFETY: the caller passed `dest.len` readable bytes at `dest.addr`.
    unsafe {
        let mut ss: sockaddr_storage = zeroed();
        core::ptr::copy_nonoverlapping(dest.addr as *const u8, &mut ss as *mut _ as *mut u8, len);
        Some((ss, len as socklen_t))
    }
}

fn family_of(ss: &sockaddr_storage) -> c_int {
    ss.ss_family as c_int
}

fn netlink(fd: c_int, dir: Direction, dest: Dest, info: SockInfo) -> Option<Channel> {
    let port_of = |ss: &sockaddr_storage| {
        // SAFETY: an AF_NETLINK address is a sockaddr_nl.
        unsafe { (*(ss as *const sockaddr_storage as *const libc::sockaddr_nl)).nl_pid }
    };
    let port = match dir {
        // Sending: to the named destination, else the connected peer, else
        // the kernel (port 0).
        Direction::Send => match dest_addr(dest) {
            Some((ss, _)) if family_of(&ss) == libc::AF_NETLINK => port_of(&ss),
            Some(_) => return None,
            None => sockname(fd, libc::getpeername).map_or(0, |(ss, _)| port_of(&ss)),
        },
        // Receiving: from this socket's own port.
        Direction::Recv => port_of(&sockname(fd, libc::getsockname)?.0),
    };
    Some(Channel::Netlink {
        protocol: info.protocol as u32,
        port,
    })
}

/// The path of an AF_UNIX address: `/run/x.sock`, `@abstract`, or None for
/// an unnamed socket.
fn unix_path(ss: &sockaddr_storage, len: socklen_t) -> Option<String> {
    let off = size_of::<libc::sa_family_t>();
    let len = len as usize;
    if len <= off {
        return None;
    }
    // SAFETY: ss is at least `len` bytes long.
    let bytes = unsafe {
        core::slice::from_raw_parts(
            (ss as *const sockaddr_storage as *const u8).add(off),
            len - off,
        )
    };
    if bytes[0] == 0 {
        let name = &bytes[1..];
        return Some(format!("@{}", String::from_utf8_lossy(name)));
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (end > 0).then(|| String::from_utf8_lossy(&bytes[..end]).into_owned())
}

fn unix(fd: c_int, dir: Direction, dest: Dest, ino: u64, info: SockInfo) -> Option<Channel> {
    let by_inode = |inode| Channel::Unix {
        inode: Some(inode),
        path: None,
        from: None,
    };
    let by_path = |path| Channel::Unix {
        inode: None,
        path: Some(path),
        from: None,
    };
    if info.sotype == libc::SOCK_DGRAM {
        // Datagrams go to a bound address: key them by path when there is one.
        match dir {
            Direction::Recv => {
                if let Some(p) =
                    sockname(fd, libc::getsockname).and_then(|(ss, l)| unix_path(&ss, l))
                {
                    return Some(by_path(p));
                }
                note_peer(fd, ino, info);
                return Some(by_inode(ino));
            }
            Direction::Send => {
                if let Some(p) = dest_addr(dest).and_then(|(ss, l)| unix_path(&ss, l)) {
                    return Some(by_path(p));
                }
                if let Some(p) =
                    sockname(fd, libc::getpeername).and_then(|(ss, l)| unix_path(&ss, l))
                {
                    return Some(by_path(p));
                }
            }
        }
    } else if dir == Direction::Recv {
        note_peer(fd, ino, info);
        return Some(by_inode(ino));
    }
    // A stream socket's send, or an unnamed datagram peer: the peer's inode.
    // A connection not accepted yet has a peer without an inode: the queue
    // is named by this socket until the receiver says whose it is.
    Some(match peer_of(fd, ino, info) {
        Some(peer) => by_inode(peer),
        None => Channel::Unix {
            inode: None,
            path: None,
            from: Some(ino),
        },
    })
}

/// The inode of a connected unix socket's peer (asked of the kernel once).
fn peer_of(fd: c_int, ino: u64, info: SockInfo) -> Option<u64> {
    if info.peer_inode != 0 {
        return Some(info.peer_inode);
    }
    let peer = holdcheck_waitfor::sockdiag::unix_peer_inode(ino)?;
    // SAFETY: fd is valid (fstat succeeded).
    let st = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
    remember_peer(st.st_dev, ino, peer);
    Some(peer)
}

/// A receiving socket learns its peer once and says so (a
/// [`Record::UnixPeer`](holdcheck_format::Record::UnixPeer)): a sender that
/// named this queue by itself, before the connection was accepted, is then
/// joined to it.
fn note_peer(fd: c_int, ino: u64, info: SockInfo) {
    if info.peer_inode != 0 {
        return;
    }
    if let Some(peer) = peer_of(fd, ino, info) {
        NEW_PEERS
            .lock()
            .get_or_insert_with(Vec::new)
            .push((ino, peer));
        HAS_NEW_PEERS.store(true, Ordering::Release);
    }
}

/// Set while NEW_PEERS holds pairs: most calls check only this.
static HAS_NEW_PEERS: AtomicBool = AtomicBool::new(false);

/// (socket, peer) pairs learnt and not yet written to the trace.
static NEW_PEERS: ForkMutex<Option<Vec<(u64, u64)>>> = ForkMutex::new(None);

/// The (socket, peer) pairs learnt since the last call.
pub fn take_new_peers() -> Vec<(u64, u64)> {
    if !HAS_NEW_PEERS.swap(false, Ordering::Acquire) {
        return Vec::new();
    }
    NEW_PEERS.lock().take().unwrap_or_default()
}

fn inet_string(ss: &sockaddr_storage) -> Option<String> {
    // SAFETY: the family says which sockaddr this is.
    unsafe {
        match family_of(ss) {
            libc::AF_INET => {
                let a = &*(ss as *const sockaddr_storage as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(format!("{ip}:{}", u16::from_be(a.sin_port)))
            }
            libc::AF_INET6 => {
                let a = &*(ss as *const sockaddr_storage as *const libc::sockaddr_in6);
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(format!("[{ip}]:{}", u16::from_be(a.sin6_port)))
            }
            _ => None,
        }
    }
}

fn inet(fd: c_int, dir: Direction, dest: Dest, info: SockInfo) -> Option<Channel> {
    let local = inet_string(&sockname(fd, libc::getsockname)?.0)?;
    if info.sotype == libc::SOCK_STREAM {
        let peer = inet_string(&sockname(fd, libc::getpeername)?.0)?;
        return Some(Channel::tcp(dir, local, peer));
    }
    Some(match dir {
        Direction::Recv => Channel::Udp { dst: local },
        Direction::Send => {
            let to = match dest_addr(dest) {
                Some((ss, _)) => inet_string(&ss)?,
                None => inet_string(&sockname(fd, libc::getpeername)?.0)?,
            };
            Channel::Udp { dst: to }
        }
    })
}

/// In a fork child: empty caches (sockets of the parent stay valid, but a
/// cache another thread was updating may be half-written).
///
/// # Safety
/// Only in a fork child (see `sync::ForkMutex::reset`).
pub unsafe fn after_fork_child() {
    SOCKETS.reset(None);
    PIPES.reset(None);
    FD_CHANNELS.reset(Vec::new());
    NEW_PEERS.reset(None);
    HAS_NEW_PEERS.store(false, Ordering::Relaxed);
}
