//! Who drains and who feeds each queue a thread waits on: from the
//! processes' descriptors, /proc/net tables, sock_diag and the shim's
//! traces.

use super::procfs;
use super::snapshot::Sampled;
use super::traces::shim_trace;
use super::wait::Waits;
use crate::report::QueueInfo;
use holdcheck_format::Channel;
use holdcheck_format::Direction;
use holdcheck_waitfor::ChannelUsers;
use holdcheck_waitfor::Wait;
use std::collections::HashMap;
use std::collections::HashSet;

/// Who may drain the queues that blocked sends wait on, and what /proc
/// says of those queues.
///
/// Which thread reads a queue is not written anywhere: only when one
/// thread is left that can ([`the_only_party`]) is it named, and the send
/// stuck when that thread is; otherwise the reader is unknown and the send
/// never called stuck. An empty queue (a blocked receive) is left to
/// `peer_feeders`.
pub(super) fn queue_users(
    procs: &[Sampled],
    w: &Waits,
    first_netlink: &[procfs::NetlinkSocket],
    sockets: &procfs::Sockets,
) -> (ChannelUsers, Vec<QueueInfo>) {
    let (netlink, tcp) = (&sockets.netlink, &sockets.tcp);
    let mut users = ChannelUsers::default();
    let mut queues = Vec::new();
    for wait in w.waits.values() {
        let Wait::Call { channel, dir, .. } = wait else {
            continue;
        };
        // A thread's end, a child's exit and a barrier are no kernel queue.
        if matches!(
            channel,
            Channel::Thread { .. } | Channel::Exit { .. } | Channel::Barrier { .. }
        ) {
            continue;
        }
        let (other_end, rmem, drops) = match channel {
            Channel::Netlink { port, .. } => {
                let row = netlink.iter().find(|s| s.port == *port && *port != 0);
                let moved = row.is_some_and(|r| {
                    first_netlink
                        .iter()
                        .find(|f| f.inode == r.inode)
                        .is_some_and(|f| f.rmem != r.rmem || f.drops != r.drops)
                });
                let target = row.map(|r| format!("socket:[{}]", r.inode));
                let owners = if moved {
                    Vec::new()
                } else {
                    owner_pids(target.as_deref())
                };
                (owners, row.map(|r| r.rmem), row.map(|r| r.drops))
            }
            Channel::Pipe { inode } => (owner_pids(Some(&format!("pipe:[{inode}]"))), None, None),
            Channel::Unix { inode: Some(i), .. } => {
                (owner_pids(Some(&format!("socket:[{i}]"))), None, None)
            }
            // The receiving end of a TCP direction is the socket whose local
            // address is `dst` and remote address `src`.
            Channel::Tcp { dst, src } => {
                let end = tcp.iter().find(|t| t.local == *dst && t.remote == *src);
                (
                    owner_pids(end.map(|t| format!("socket:[{}]", t.inode)).as_deref()),
                    None,
                    None,
                )
            }
            // The listening socket, by its port or path.
            Channel::Listen { addr } => {
                let inode = match addr.split_once(':') {
                    Some(("tcp", port)) => tcp
                        .iter()
                        .find(|t| {
                            t.listening && t.local.rsplit_once(':').map(|x| x.1) == Some(port)
                        })
                        .map(|t| t.inode),
                    Some(("unix", path)) => sockets
                        .unix_listeners
                        .iter()
                        .find(|(_, p)| p == path)
                        .map(|(i, _)| *i),
                    _ => None,
                };
                (
                    owner_pids(inode.map(|i| format!("socket:[{i}]")).as_deref()),
                    None,
                    None,
                )
            }
            _ => (Vec::new(), None, None),
        };
        let all_seen = other_end
            .iter()
            .all(|pid| procs.iter().any(|p| p.pid == *pid));
        if *dir == Direction::Send && !other_end.is_empty() && all_seen {
            if let Some(t) = the_only_party(procs, w, &other_end, channel, *dir) {
                users.recv.entry(channel.clone()).or_default().insert(t);
                users.exhaustive.insert((channel.clone(), Direction::Recv));
            }
        }
        queues.push(QueueInfo {
            description: channel.describe(),
            rmem,
            drops,
            owner_pids: other_end,
        });
    }
    queues.sort_by(|a, b| a.description.cmp(&b.description));
    queues.dedup_by(|a, b| a.description == b.description);
    (users, queues)
}

/// Who may arrive at each private barrier a thread waits at: every thread
/// of its process not waiting there (a barrier records no thread, so none
/// is left out), and no other (a thread yet to be made is made by one of
/// them). A process-shared barrier may be reached from another process:
/// who will arrive there is not known.
pub(super) fn barrier_arrivers(procs: &[Sampled], w: &Waits, users: &mut ChannelUsers) {
    let at = |tid: &u32, pid: u32, addr: u64| {
        matches!(w.waits.get(tid), Some(Wait::Call {
            channel: Channel::Barrier { pid: p, addr: a, .. },
            ..
        }) if *p == pid && *a == addr)
    };
    for wait in w.waits.values() {
        let Wait::Call {
            channel: channel @ Channel::Barrier { pid, addr, .. },
            ..
        } = wait
        else {
            continue;
        };
        if !w.private_barriers.contains(&(*pid, *addr)) {
            continue;
        }
        let Some(p) = procs.iter().find(|p| p.pid == *pid) else {
            continue;
        };
        // The shim's watchdog arrives nowhere.
        let arrivers = p
            .last
            .iter()
            .filter(|t| t.name != WATCHDOG_THREAD)
            .map(|t| t.tid)
            .filter(|tid| !at(tid, *pid, *addr));
        users
            .send
            .entry(channel.clone())
            .or_default()
            .extend(arrivers);
        users.exhaustive.insert((channel.clone(), Direction::Send));
    }
}

/// Who drains and feeds each queue, by thread, as the shim recorded it for
/// the processes that run with it (threads that are gone are left out:
/// they will neither drain nor feed again).
pub(super) fn traced_users(procs: &[Sampled], users: &mut ChannelUsers) {
    for p in procs {
        let Some(file) = shim_trace(p.pid).and_then(|t| crate::trace::read_file(&t).ok()) else {
            continue;
        };
        let alive: HashSet<u32> = p.last.iter().map(|t| t.tid).collect();
        for r in &file.records {
            if let holdcheck_format::Record::ChannelUse {
                tid,
                channel,
                direction,
                ..
            } = r
            {
                if alive.contains(tid) {
                    let m = match direction {
                        Direction::Recv => &mut users.recv,
                        Direction::Send => &mut users.send,
                    };
                    m.entry(channel.clone()).or_default().insert(*tid);
                }
            }
        }
    }
}

/// The feeders of a queue a blocked receive waits on, when the shim named
/// none: every thread of the sampled processes that hold the sending end
/// (the peer of a unix socket, the other end of a TCP connection, a pipe
/// open for writing). A feeder that is not stuck keeps the receive alive,
/// so taking them all never makes a deadlock up; an end held outside the
/// snapshot leaves the receive unknown, never stuck.
pub(super) fn peer_feeders(
    procs: &[Sampled],
    w: &Waits,
    tcp: &[procfs::TcpSocket],
    users: &mut ChannelUsers,
) {
    for wait in w.waits.values() {
        let Wait::Call {
            channel,
            dir: Direction::Recv,
            ..
        } = wait
        else {
            continue;
        };
        if users.send.contains_key(channel) {
            continue;
        }
        let holders = match channel {
            Channel::Unix { inode: Some(i), .. } => {
                let Some(peer) = holdcheck_waitfor::sockdiag::unix_peer_inode(*i) else {
                    continue;
                };
                // The thread that serves the other direction of this
                // connection (seen receiving there by the shim) is the
                // one that answers on it.
                let serving = Channel::Unix {
                    inode: Some(peer),
                    path: None,
                    from: None,
                };
                if let Some(tids) = users.recv.get(&serving).filter(|t| !t.is_empty()) {
                    let tids = tids.clone();
                    users.send.entry(channel.clone()).or_default().extend(tids);
                    continue;
                }
                procfs::holders_of(&format!("socket:[{peer}]"))
            }
            Channel::Tcp { dst, src } => {
                match tcp.iter().find(|t| t.local == *src && t.remote == *dst) {
                    Some(end) => procfs::holders_of(&format!("socket:[{}]", end.inode)),
                    None => continue,
                }
            }
            Channel::Pipe { inode } => {
                let mut h = procfs::holders_of(&format!("pipe:[{inode}]"));
                h.retain(|_, fds| fds.iter().any(|&access| access != 0));
                h
            }
            // A process exits when all its threads are done.
            Channel::Exit { pid } => HashMap::from([(*pid, Vec::new())]),
            _ => continue,
        };
        if holders.is_empty()
            || holders
                .keys()
                .any(|pid| !procs.iter().any(|p| p.pid == *pid))
        {
            continue;
        }
        let pids: Vec<u32> = holders.into_keys().collect();
        if let Some(t) = the_only_party(procs, w, &pids, channel, Direction::Recv) {
            users.send.entry(channel.clone()).or_default().insert(t);
            users.exhaustive.insert((channel.clone(), Direction::Send));
        }
    }
}

/// The one thread that can act on the other end of a queue, held by the
/// processes `pids` (all sampled): of their threads, not one waiting on
/// this queue from the same side (it is blocked there), not one joining
/// a thread or waiting for a child (it acts only once that ended), not the shim's
/// watchdog. None when several remain: which of them would act is not
/// known, and naming one would be a guess.
fn the_only_party(
    procs: &[Sampled],
    w: &Waits,
    pids: &[u32],
    channel: &Channel,
    dir: Direction,
) -> Option<u32> {
    let mut left = procs
        .iter()
        .filter(|p| pids.contains(&p.pid))
        .flat_map(|p| p.last.iter())
        .filter(|t| t.name != WATCHDOG_THREAD)
        .filter(|t| match w.waits.get(&t.tid) {
            Some(Wait::Call {
                channel: c, dir: d, ..
            }) => {
                !(matches!(c, Channel::Thread { .. } | Channel::Exit { .. })
                    || c == channel && *d == dir)
            }
            _ => true,
        })
        .map(|t| t.tid);
    let one = left.next()?;
    left.next().is_none().then_some(one)
}

/// The processes that hold `target` open for reading: its receiving end.
pub(super) fn owner_pids(target: Option<&str>) -> Vec<u32> {
    let mut v: Vec<u32> = target
        .map(|t| {
            let mut h = procfs::holders_of(t);
            // A pipe's write end is not its receiving end.
            h.retain(|_, fds| fds.iter().any(|&access| access != 1));
            h.into_keys().collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// The thread name of the shim's watchdog (`shim/src/watchdog.rs`).
pub(super) const WATCHDOG_THREAD: &str = "holdcheck-watch";
