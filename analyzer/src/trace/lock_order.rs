//! Reading lock-order facts, the commonest record by far (a million in a
//! big trace). The shim writes them in one shape, which is read here
//! byte by byte; anything else (another key order, spaces, a field this
//! reader does not know, a damaged line) goes to serde, which reads
//! whatever it accepts and says why it refuses the rest. serde alone read
//! a million facts in about 0.9 s, a third of it comparing keys, and the
//! model waited for it.

use holdcheck_format::{Held, LockRef, Mode, Record};

/// The record of a line that starts as a lock-order fact does, or None
/// when the line is not one.
pub(super) fn parse(line: &[u8]) -> Option<serde_json::Result<Record>> {
    if !line.starts_with(TAG) {
        return None;
    }
    let fact = canonical(line).map_or_else(|| serde_json::from_slice(line), Ok);
    Some(fact.map(LockOrderLine::into_record))
}

const TAG: &[u8] = br#"{"t":"lock_order","#;

/// The shim's shape: the keys in their order, no spaces, numbers without
/// signs, fractions or leading zeros. None for anything else.
fn canonical(line: &[u8]) -> Option<LockOrderLine> {
    let mut c = Cursor { b: line, i: 0 };
    c.lit(TAG)?;
    c.lit(br#""tid":"#)?;
    let tid = c.u32()?;
    c.lit(br#","lock":"#)?;
    let lock = c.lock()?;
    c.lit(br#","mode":"#)?;
    let mode = c.mode()?;
    let try_lock = if c.lit(br#","try_lock":"#).is_some() {
        c.bool()?
    } else {
        false
    };
    c.lit(br#","held":["#)?;
    let mut held = Vec::new();
    if c.lit(b"]").is_none() {
        loop {
            c.lit(br#"{"lock":"#)?;
            let lock = c.lock()?;
            c.lit(br#","mode":"#)?;
            let mode = c.mode()?;
            c.lit(br#","site":"#)?;
            let site = c.u64()?;
            let stack = match c.lit(br#","stack":"#) {
                Some(()) => Some(c.u64()?),
                None => None,
            };
            c.lit(b"}")?;
            held.push(Held {
                lock,
                mode,
                site,
                stack,
            });
            if c.lit(b"]").is_some() {
                break;
            }
            c.lit(b",")?;
        }
    }
    c.lit(br#","stack":"#)?;
    let stack = c.u64()?;
    let phase = match c.lit(br#","phase":"#) {
        Some(()) => c.u32()?,
        None => 0,
    };
    c.lit(b"}")?;
    // The end of the line, as serde allows it to end.
    if !c.b[c.i..].iter().all(|b| b" \t\r\n".contains(b)) {
        return None;
    }
    Some(LockOrderLine {
        tid,
        lock,
        mode,
        try_lock,
        held,
        stack,
        phase,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(s).then(|| self.i += s.len())
    }

    /// A JSON number that is a whole u64: "0", or digits not starting
    /// with 0; not followed by a fraction or an exponent.
    fn u64(&mut self) -> Option<u64> {
        let digits = self.b[self.i..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let d = &self.b[self.i..self.i + digits];
        if d.is_empty() || (d.len() > 1 && d[0] == b'0') {
            return None;
        }
        if matches!(self.b.get(self.i + digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut v: u64 = 0;
        for &x in d {
            v = v.checked_mul(10)?.checked_add(u64::from(x - b'0'))?;
        }
        self.i += digits;
        Some(v)
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            return Some(true);
        }
        self.lit(b"false").map(|()| false)
    }

    fn mode(&mut self) -> Option<Mode> {
        if self.lit(br#""write""#).is_some() {
            return Some(Mode::Write);
        }
        self.lit(br#""read""#).map(|()| Mode::Read)
    }

    fn lock(&mut self) -> Option<LockRef> {
        self.lit(br#"{"addr":"#)?;
        let addr = self.u64()?;
        self.lit(br#","gen":"#)?;
        let gen = self.u32()?;
        self.lit(b"}")?;
        Some(LockRef { addr, gen })
    }
}

/// A lock-order fact, read straight into its fields (serde reads an
/// internally tagged enum by buffering the whole record first, which
/// costs a third of a big trace's reading).
#[derive(serde::Deserialize)]
struct LockOrderLine {
    tid: u32,
    lock: LockRef,
    mode: Mode,
    #[serde(default)]
    try_lock: bool,
    #[serde(deserialize_with = "exact_vec")]
    held: Vec<Held>,
    stack: u64,
    #[serde(default)]
    phase: u32,
}

impl LockOrderLine {
    fn into_record(self) -> Record {
        Record::LockOrder {
            tid: self.tid,
            lock: self.lock,
            mode: self.mode,
            try_lock: self.try_lock,
            held: self.held,
            stack: self.stack,
            phase: self.phase,
        }
    }
}

/// A short list read into a vector of its exact length: serde's own keeps
/// room for four, and shrinking it after (a `realloc` per fact) was a
/// tenth of reading a million facts.
fn exact_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Exact<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Exact<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            // Most facts hold one or two locks.
            let Some(a) = seq.next_element()? else {
                return Ok(Vec::new());
            };
            let Some(b) = seq.next_element()? else {
                return Ok(vec![a]);
            };
            let Some(c) = seq.next_element()? else {
                return Ok(vec![a, b]);
            };
            let mut v = vec![a, b, c];
            while let Some(x) = seq.next_element()? {
                v.push(x);
            }
            Ok(v)
        }
    }
    d.deserialize_seq(Exact(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde makes of a line, the way the analyzer read every line
    /// before this reader.
    fn serde(line: &[u8]) -> Option<Record> {
        serde_json::from_slice(line).ok()
    }

    #[test]
    fn the_shims_lines_read_as_serde_reads_them() {
        let lines: &[&[u8]] = &[
            br#"{"t":"lock_order","tid":7,"lock":{"addr":4096,"gen":2},"mode":"read","held":[{"lock":{"addr":64,"gen":0},"mode":"write","site":99}],"stack":5,"phase":3}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":4096,"gen":0},"mode":"write","try_lock":true,"held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":10655,"lock":{"addr":94147839994992,"gen":0},"mode":"write","try_lock":false,"held":[{"lock":{"addr":94147184045888,"gen":0},"mode":"write","site":94147176311024}],"stack":6663931875103737009,"phase":1}"#,
            // Three held, one with its own stack; the largest numbers.
            br#"{"t":"lock_order","tid":4294967295,"lock":{"addr":18446744073709551615,"gen":4294967295},"mode":"write","try_lock":false,"held":[{"lock":{"addr":1,"gen":0},"mode":"read","site":2,"stack":3},{"lock":{"addr":0,"gen":1},"mode":"write","site":0},{"lock":{"addr":5,"gen":6},"mode":"write","site":7}],"stack":0}"#,
            b"{\"t\":\"lock_order\",\"tid\":1,\"lock\":{\"addr\":2,\"gen\":0},\"mode\":\"write\",\"held\":[],\"stack\":3}\n",
        ];
        for line in lines {
            let fast = canonical(line).expect("the shim's shape").into_record();
            assert_eq!(Some(fast), serde(line), "{}", String::from_utf8_lossy(line));
        }
    }

    /// Every line one edit away from the shim's (a byte changed, removed
    /// or added, from bytes that matter to JSON) reads as serde reads it.
    #[test]
    fn lines_one_edit_from_the_shims_read_as_serde_reads_them() {
        let line: &[u8] = br#"{"t":"lock_order","tid":17,"lock":{"addr":4096,"gen":2},"mode":"read","try_lock":false,"held":[{"lock":{"addr":640,"gen":0},"mode":"write","site":99,"stack":4},{"lock":{"addr":1,"gen":3},"mode":"read","site":5}],"stack":10,"phase":3}"#;
        let bytes = b"0123456789-+.eE\"{}[],: \n\tatfwrx\0\xff";
        let mut edits: Vec<Vec<u8>> = Vec::new();
        for i in 0..=line.len() {
            for &b in bytes {
                let mut v = line.to_vec();
                v.insert(i, b);
                edits.push(v);
                if i < line.len() {
                    let mut v = line.to_vec();
                    v[i] = b;
                    edits.push(v);
                }
            }
            if i < line.len() {
                let mut v = line.to_vec();
                v.remove(i);
                edits.push(v);
            }
        }
        let mut read = 0;
        for l in &edits {
            let Some(got) = parse(l) else {
                continue; // no longer a lock-order line: not this reader's
            };
            let got = got.ok();
            assert_eq!(got, serde(l), "{}", String::from_utf8_lossy(l));
            read += got.is_some() as usize;
        }
        // Some edits leave a fact (a digit more, a space, "read" for "rear"
        // is not), most do not.
        assert!(
            read > 100 && read < edits.len() / 2,
            "{read} of {}",
            edits.len()
        );
    }

    #[test]
    fn any_other_shape_goes_to_serde_which_reads_or_refuses_it() {
        let lines: &[&[u8]] = &[
            // Spaces, another key order, an unknown key: serde reads them.
            br#"{"t":"lock_order", "tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","lock":{"addr":1,"gen":0},"tid":7,"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5,"new":1}"#,
            // A fraction, out of range, a leading zero, a sign, a bad mode,
            // a trailing comma, truncated, something after the record:
            // refused.
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5.0}"#,
            br#"{"t":"lock_order","tid":4294967296,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":18446744073709551616,"gen":0},"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":07,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":-7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"Write","held":[],"stack":5}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[{"lock":{"addr":1,"gen":0},"mode":"write","site":2},],"stack":5}"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5"#,
            br#"{"t":"lock_order","tid":7,"lock":{"addr":1,"gen":0},"mode":"write","held":[],"stack":5}x"#,
            br#"{"t":"lock_order","tid":"x"}"#,
        ];
        for line in lines {
            let shown = String::from_utf8_lossy(line);
            assert!(canonical(line).is_none(), "{shown}");
            let read = parse(line).expect("a lock-order line").ok();
            assert_eq!(read, serde(line), "{shown}");
        }
        // The first three are facts; the rest are not.
        let read = lines.iter().filter(|l| parse(l).unwrap().is_ok()).count();
        assert_eq!(read, 3);
        assert!(parse(br#"{"t":"lock","lock":{"addr":1,"gen":0}}"#).is_none());
    }
}
