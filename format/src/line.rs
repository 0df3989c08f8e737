//! The lines of the records a program's first seconds make by the
//! thousand, written by hand: a lock-order fact and its locks' records.
//! serde_json took about 5 700 instructions for a lock-order fact with
//! three held locks (each key escaped, each piece a write of its own), a
//! third of what each of the first facts cost (`manylocks --stress`, whose
//! 2 000 first facts are most of what the shim adds to its first 250 000
//! steps). The bytes are serde_json's (tested against it), so every reader
//! takes them as any other line.

use crate::{Held, LockKind, LockRef, Mode, Record};

/// Appends `r`'s line (newline included) if it is one written here.
pub(crate) fn write_fast(r: &Record, out: &mut Vec<u8>) -> bool {
    match r {
        Record::LockOrder {
            tid,
            lock,
            mode,
            try_lock,
            held,
            stack,
            phase,
        } => {
            out.extend_from_slice(br#"{"t":"lock_order","tid":"#);
            num(out, *tid);
            out.extend_from_slice(br#","lock":"#);
            lock_ref(out, lock);
            out.extend_from_slice(br#","mode":"#);
            out.extend_from_slice(mode_str(*mode));
            out.extend_from_slice(if *try_lock {
                br#","try_lock":true,"held":["#
            } else {
                br#","try_lock":false,"held":["#
            });
            for (i, h) in held.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                held_entry(out, h);
            }
            out.extend_from_slice(br#"],"stack":"#);
            num(out, *stack);
            if *phase != 0 {
                out.extend_from_slice(br#","phase":"#);
                num(out, *phase);
            }
            out.extend_from_slice(b"}\n");
            true
        }
        // A file lock's path is a string to escape: serde_json's.
        Record::Lock {
            lock,
            kind,
            writer_preferring,
            recursive,
            file: None,
            init,
        } => {
            out.extend_from_slice(br#"{"t":"lock","lock":"#);
            lock_ref(out, lock);
            out.extend_from_slice(br#","kind":"#);
            out.extend_from_slice(kind_str(*kind));
            out.extend_from_slice(br#","writer_preferring":"#);
            out.extend_from_slice(bool_str(*writer_preferring));
            out.extend_from_slice(br#","recursive":"#);
            out.extend_from_slice(bool_str(*recursive));
            if let Some(init) = init {
                out.extend_from_slice(br#","init":"#);
                num(out, *init);
            }
            out.extend_from_slice(b"}\n");
            true
        }
        _ => false,
    }
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn lock_ref(out: &mut Vec<u8>, l: &LockRef) {
    out.extend_from_slice(br#"{"addr":"#);
    num(out, l.addr);
    out.extend_from_slice(br#","gen":"#);
    num(out, l.gen);
    out.push(b'}');
}

fn held_entry(out: &mut Vec<u8>, h: &Held) {
    out.extend_from_slice(br#"{"lock":"#);
    lock_ref(out, &h.lock);
    out.extend_from_slice(br#","mode":"#);
    out.extend_from_slice(mode_str(h.mode));
    out.extend_from_slice(br#","site":"#);
    num(out, h.site);
    if let Some(stack) = h.stack {
        out.extend_from_slice(br#","stack":"#);
        num(out, stack);
    }
    out.push(b'}');
}

fn mode_str(m: Mode) -> &'static [u8] {
    match m {
        Mode::Write => br#""write""#,
        Mode::Read => br#""read""#,
    }
}

fn kind_str(k: LockKind) -> &'static [u8] {
    match k {
        LockKind::Mutex => br#""mutex""#,
        LockKind::Rwlock => br#""rwlock""#,
        LockKind::File => br#""file""#,
        LockKind::Spin => br#""spin""#,
    }
}

fn bool_str(b: bool) -> &'static [u8] {
    if b {
        b"true"
    } else {
        b"false"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's line for `r`.
    fn serde_line(r: &Record) -> Vec<u8> {
        let mut v = serde_json::to_vec(r).unwrap();
        v.push(b'\n');
        v
    }

    #[test]
    fn the_lines_written_by_hand_are_serde_jsons_bytes() {
        let locks = [
            LockRef { addr: 0, gen: 0 },
            LockRef {
                addr: u64::MAX,
                gen: u32::MAX,
            },
            LockRef {
                addr: 0x5555_5555_1234,
                gen: 7,
            },
        ];
        let helds: Vec<Held> = locks
            .iter()
            .zip([Mode::Read, Mode::Write, Mode::Read])
            .zip([None, Some(u64::MAX), Some(42)])
            .map(|((&lock, mode), stack)| Held {
                lock,
                mode,
                site: lock.addr ^ 0x1f,
                stack,
            })
            .collect();
        let mut records = Vec::new();
        for (i, &lock) in locks.iter().enumerate() {
            for mode in [Mode::Write, Mode::Read] {
                for (try_lock, phase) in [(false, 0), (true, 3), (false, u32::MAX)] {
                    records.push(Record::LockOrder {
                        tid: [1, 4_194_304, u32::MAX][i],
                        lock,
                        mode,
                        try_lock,
                        held: helds[..i].to_vec(),
                        stack: [0, 1, u64::MAX][i],
                        phase,
                    });
                }
            }
            for kind in [
                LockKind::Mutex,
                LockKind::Rwlock,
                LockKind::File,
                LockKind::Spin,
            ] {
                for (writer_preferring, recursive, init) in [
                    (false, false, None),
                    (true, false, Some(0)),
                    (false, true, Some(u64::MAX)),
                ] {
                    records.push(Record::Lock {
                        lock,
                        kind,
                        writer_preferring,
                        recursive,
                        file: None,
                        init,
                    });
                }
            }
        }
        for r in &records {
            let mut fast = b"before\n".to_vec();
            assert!(write_fast(r, &mut fast), "{r:?}");
            let mut expected = b"before\n".to_vec();
            expected.extend(serde_line(r));
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&expected)
            );
            // And through the public path, read back.
            let mut line = Vec::new();
            r.write_line(&mut line).unwrap();
            let back: Record = serde_json::from_slice(&line).unwrap();
            assert_eq!(&back, r);
        }
    }

    #[test]
    fn a_file_locks_record_and_other_records_are_left_to_serde_json() {
        let file = Record::Lock {
            lock: LockRef { addr: 1, gen: 0 },
            kind: LockKind::File,
            writer_preferring: false,
            recursive: false,
            file: Some("/tmp/a \"quoted\"\npath".into()),
            init: None,
        };
        let stack = Record::Stack {
            id: 1,
            frames: vec![1, 2],
        };
        for r in [file, stack] {
            let mut out = Vec::new();
            assert!(!write_fast(&r, &mut out));
            assert!(out.is_empty());
            r.write_line(&mut out).unwrap();
            assert_eq!(out, serde_line(&r));
        }
    }
}
