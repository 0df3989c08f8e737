//! Who drains and who feeds each queue a thread waits on: from the
//! processes' descriptors, /proc/net tables, sock_diag and the shim's
//! traces.

use super::procfs;
use super::snapshot::Sampled;
use super::traces::shim_trace;
use super::wait::Waits;
use crate::report::QueueInfo;
use holdcheck_format::waitfor::ChannelUsers;
use holdcheck_format::waitfor::Wait;
use holdcheck_format::Channel;
use holdcheck_format::Direction;
use std::collections::HashMap;
use std::collections::HashSet;

/// Who drains the queues that blocked sends wait on, and what /proc says
/// of those queues.
///
/// A send that made no progress means a full queue that nobody drains. If
/// a sampled process holds its receiving end, whoever would drain it is
/// among that process's threads that wait for a lock (the others are not
/// reading it, or the queue would move). An empty queue (a blocked receive)
/// may get a sender at any time: nothing is inferred for it.
pub(super) fn queue_users(
    procs: &[Sampled],
    w: &Waits,
    first_netlink: &[procfs::NetlinkSocket],
    netlink: &[procfs::NetlinkSocket],
    tcp: &[procfs::TcpSocket],
) -> (ChannelUsers, Vec<QueueInfo>) {
    let mut users = ChannelUsers::default();
    let mut queues = Vec::new();
    for wait in w.waits.values() {
        let Wait::Call { channel, dir, .. } = wait else {
            continue;
        };
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
            _ => (Vec::new(), None, None),
        };
        if *dir == Direction::Send {
            for (idx, p) in procs.iter().enumerate() {
                if !other_end.contains(&p.pid) {
                    continue;
                }
                let lock_waiters = w.waits.iter().filter(|(tid, x)| {
                    matches!(x, Wait::Lock { .. }) && w.process_of.get(tid) == Some(&idx)
                });
                users
                    .recv
                    .entry(channel.clone())
                    .or_default()
                    .extend(lock_waiters.map(|(t, _)| *t));
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
                match holdcheck_format::sockdiag::unix_peer_inode(*i) {
                    Some(peer) => procfs::holders_of(&format!("socket:[{peer}]")),
                    None => continue,
                }
            }
            Channel::Tcp { dst, src } => {
                match tcp.iter().find(|t| t.local == *src && t.remote == *dst) {
                    Some(end) => procfs::holders_of(&format!("socket:[{}]", end.inode)),
                    None => continue,
                }
            }
            Channel::Pipe { inode } => {
                let mut h = procfs::holders_of(&format!("pipe:[{inode}]"));
                h.retain(|_, fds| fds.iter().any(|&writes| writes));
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
        let feeders = users.send.entry(channel.clone()).or_default();
        for p in procs.iter().filter(|p| holders.contains_key(&p.pid)) {
            // The shim's watchdog never feeds the program's queues.
            feeders.extend(
                p.last
                    .iter()
                    .filter(|t| t.name != WATCHDOG_THREAD)
                    .map(|t| t.tid),
            );
        }
    }
}

pub(super) fn owner_pids(target: Option<&str>) -> Vec<u32> {
    let mut v: Vec<u32> = target
        .map(|t| procfs::holders_of(t).into_keys().collect())
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// The thread name of the shim's watchdog (`shim/src/watchdog.rs`).
pub(super) const WATCHDOG_THREAD: &str = "holdcheck-watch";
