//! Building the model straight from trace directories, for traces of a
//! million facts: one thread reads and parses records while this one adds
//! them, and no trace is ever held whole.

use super::{canonical, Adding, Model, Pids};
use crate::trace;
use anyhow::Result;
use holdcheck_format::{Channel, Record};
use std::collections::HashMap;
use std::path::PathBuf;

/// What the reading thread hands over, in file order.
enum Event {
    /// A trace file starts.
    Begin(PathBuf),
    Record(Record),
    /// The file ends, with the problems met reading it.
    End(Vec<String>),
}

/// Records per hand-over: large enough that the channel costs nothing per
/// record, small enough that little is in flight.
const BATCH: usize = 4096;

impl Model {
    /// [`Model::build`] of every trace of the directories, read as it is
    /// added. Fails as [`trace::read_dirs`] does.
    pub fn from_dirs(dirs: &[PathBuf]) -> Result<Model> {
        let files = trace::files_of(dirs)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(8);
        std::thread::scope(|s| {
            let reading = &files;
            let reader = std::thread::Builder::new()
                .name("trace-reader".into())
                .spawn_scoped(s, move || read_events(reading, tx));
            let Ok(reader) = reader else {
                // No second thread to be had: read everything, then add it.
                let traces: Vec<_> = files
                    .iter()
                    .map(|f| trace::read_file(f))
                    .collect::<Result<_>>()?;
                return Ok(Model::build(&traces));
            };
            let mut b = Builder::default();
            for batch in rx {
                for ev in batch {
                    b.feed(ev);
                }
            }
            reader
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok(b.finish())
        })
    }
}

/// [`Model::build`]: traces read whole go through the same [`Builder`].
pub(super) fn build(traces: &[crate::trace::TraceFile]) -> Model {
    let mut b = Builder::default();
    for t in traces {
        b.feed(Event::Begin(t.path.clone()));
        for r in &t.records {
            b.feed(Event::Record(r.clone()));
        }
        b.feed(Event::End(t.warnings.clone()));
    }
    b.finish()
}

/// Reads the files' records in order, handing them over in batches.
fn read_events(files: &[PathBuf], tx: std::sync::mpsc::SyncSender<Vec<Event>>) -> Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    for f in files {
        let input = trace::open(f)?;
        batch.push(Event::Begin(f.clone()));
        let warnings = trace::read_each(f, input, |r| {
            batch.push(Event::Record(r));
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                // The adding side is gone only if it panicked.
                let _ = tx.send(full);
            }
        })?;
        batch.push(Event::End(warnings));
    }
    let _ = tx.send(batch);
    Ok(())
}

/// Adds events to the model. A unix queue named by its sender is renamed
/// after its receiver (`canonical_channels`), which the last trace may be
/// the one to tell: from the first record naming such a queue, events are
/// held back until every trace is read, so records are still added in the
/// order they were read.
#[derive(Default)]
struct Builder {
    model: Model,
    pids: Pids,
    /// Sending unix socket → receiving one (`Record::UnixPeer`).
    aliases: HashMap<u64, u64>,
    held_back: Option<Vec<Event>>,
    /// The file being added, and its trace once its first record is in.
    current: Option<(PathBuf, Option<Adding>)>,
}

impl Builder {
    fn feed(&mut self, mut ev: Event) {
        if let Event::Record(Record::UnixPeer { inode, peer }) = &ev {
            self.aliases.insert(*peer, *inode);
        }
        if let Some(held) = &mut self.held_back {
            held.push(ev);
            return;
        }
        if let Event::Record(r) = &mut ev {
            if names_a_sender(r) {
                self.held_back = Some(vec![ev]);
                return;
            }
        }
        self.add(ev);
    }

    fn add(&mut self, ev: Event) {
        let Builder {
            model,
            pids,
            current,
            ..
        } = self;
        match ev {
            Event::Begin(path) => *current = Some((path, None)),
            Event::Record(r) => {
                let (path, adding) = current.as_mut().expect("a record follows its file's start");
                let adding =
                    adding.get_or_insert_with(|| model.begin_trace(pids.of(Some(&r)), path));
                model.add_record(adding, &r);
            }
            Event::End(warnings) => {
                let (path, adding) = current.take().expect("a file ends after its start");
                let adding = adding.unwrap_or_else(|| model.begin_trace(pids.of(None), &path));
                model.end_trace(adding);
                model.warnings.extend(warnings);
            }
        }
    }

    fn finish(mut self) -> Model {
        for mut ev in self.held_back.take().unwrap_or_default() {
            if let Event::Record(r) = &mut ev {
                r.channels_mut(|c| canonical(c, &self.aliases));
            }
            self.add(ev);
        }
        self.model.finish()
    }
}

/// Whether a record names a unix queue by its sender only.
fn names_a_sender(r: &mut Record) -> bool {
    let mut found = false;
    // The one visitor of a record's queues; it changes nothing here.
    r.channels_mut(|c| {
        found |= matches!(
            c,
            Channel::Unix {
                inode: None,
                path: None,
                from: Some(_)
            }
        )
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdcheck_format::{Direction, Held, LockRef, Mode, TRACE_VERSION};

    fn header(pid: u32) -> Record {
        Record::Header {
            version: TRACE_VERSION,
            pid,
            ppid: 1,
            exe: "/x".into(),
            cmdline: vec![],
            call_clock_res_ns: None,
        }
    }

    fn held(addr: u64) -> Vec<Held> {
        vec![Held {
            lock: LockRef { addr, gen: 0 },
            mode: Mode::Write,
            site: 0x10,
            stack: None,
        }]
    }

    fn unix(inode: Option<u64>, from: Option<u64>) -> Channel {
        Channel::Unix {
            inode,
            path: None,
            from,
        }
    }

    fn write(dir: &std::path::Path, pid: u32, records: &[Record]) {
        let bytes: Vec<u8> = records.iter().flat_map(|r| r.to_line()).collect();
        std::fs::write(dir.join(format!("holdcheck.{pid}.0.trace")), bytes).unwrap();
    }

    /// `run` adds a snapshot's trace of a hung process to the shim's; its
    /// header, written from outside, has no call clock: the shim's stays.
    #[test]
    fn a_snapshots_header_keeps_the_shims_call_clock() {
        let dir = std::env::temp_dir().join(format!("holdcheck-clock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut timed = header(10);
        if let Record::Header {
            call_clock_res_ns, ..
        } = &mut timed
        {
            *call_clock_res_ns = Some(4_000_000);
        }
        write(&dir, 10, &[timed]);
        let snapshot = header(10).to_line();
        std::fs::write(dir.join("holdcheck.snapshot.10.trace"), snapshot).unwrap();
        let streamed = Model::from_dirs(std::slice::from_ref(&dir)).unwrap();
        let in_memory = Model::build(&trace::read_dirs(std::slice::from_ref(&dir)).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        for m in [streamed, in_memory] {
            assert_eq!(m.processes[&10].call_clock_res_ns, Some(4_000_000));
        }
    }

    /// The client's trace names the queue by its sending socket; only the
    /// server's trace, read after it, says which socket receives.
    #[test]
    fn a_queue_named_by_its_sender_in_an_earlier_trace_is_renamed_as_in_memory() {
        let dir = std::env::temp_dir().join(format!("holdcheck-streamed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let call = |id, addr, channel| Record::HeldAcrossCall {
            id,
            tid: 1,
            held: held(addr),
            call: "sendmsg".into(),
            channel,
            direction: Direction::Send,
            stack: 1,
        };
        write(
            &dir,
            10,
            &[
                header(10),
                call(1, 0xa000, unix(Some(3), None)),
                call(2, 0xb000, unix(None, Some(7))),
                call(3, 0xc000, unix(Some(4), None)),
            ],
        );
        write(
            &dir,
            20,
            &[
                header(20),
                Record::UnixPeer { inode: 8, peer: 7 },
                Record::QueueLock {
                    tid: 2,
                    channel: unix(Some(8), None),
                    direction: Direction::Recv,
                    lock: LockRef {
                        addr: 0xd000,
                        gen: 0,
                    },
                    mode: Mode::Write,
                    site: 0x20,
                    stack: 2,
                },
            ],
        );
        let streamed = Model::from_dirs(std::slice::from_ref(&dir)).unwrap();
        let in_memory = Model::build(&trace::read_dirs(std::slice::from_ref(&dir)).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        let edges = |m: &Model| -> Vec<(super::super::Node, super::super::Node, Vec<u32>)> {
            m.edges
                .iter()
                .map(|((a, b), ev)| {
                    let who = ev.iter().map(|e| e.pid).collect();
                    (m.nodes[a].clone(), m.nodes[b].clone(), who)
                })
                .collect()
        };
        assert_eq!(edges(&streamed), edges(&in_memory));
        let renamed = super::super::Node::Queue {
            channel: unix(Some(8), None),
            dir: Direction::Send,
        };
        assert!(streamed.node_index(&renamed).is_some());
        assert!(streamed.nodes.iter().all(|n| !matches!(
            n,
            super::super::Node::Queue {
                channel: Channel::Unix { from: Some(_), .. },
                ..
            }
        )));
        assert_eq!(streamed.held_calls.len(), 3);
        assert_eq!(streamed.processes.len(), 2);
    }
}
