//! rustlocks: a Rust program whose threads deadlock on `std::sync::Mutex`
//! (futexes that record no holder, which holdcheck cannot read).
//!
//!   rustlocks deadlock   main and "auditor" take `accounts` and `ledger`
//!                        in opposite orders: a deadlock, for ever
//!   rustlocks ordered    both take them in the same order: exits 0
//!   rustlocks condvar    "idle-waiter" waits on a `std::sync::Condvar`
//!                        for ever, "timed-waiter" for 600 s (a futex word
//!                        of Rust's own, not glibc's condition variable);
//!                        main joins the first
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::Duration;

fn condvars() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let timed = Arc::new((Mutex::new(false), Condvar::new()));
    let p = pair.clone();
    let idle = thread::Builder::new()
        .name("idle-waiter".into())
        .spawn(move || {
            let (m, c) = &*p;
            let mut go = m.lock().unwrap();
            while !*go {
                go = c.wait(go).unwrap();
            }
        })
        .unwrap();
    thread::Builder::new()
        .name("timed-waiter".into())
        .spawn(move || {
            let (m, c) = &*timed;
            let go = m.lock().unwrap();
            let _ = c.wait_timeout(go, Duration::from_secs(600)).unwrap();
        })
        .unwrap();
    idle.join().unwrap();
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let opposite = match mode.as_str() {
        "deadlock" => true,
        "ordered" => false,
        "condvar" => return condvars(),
        _ => {
            eprintln!("usage: rustlocks deadlock|ordered|condvar");
            std::process::exit(2);
        }
    };
    let accounts = Arc::new(Mutex::new(0u64));
    let ledger = Arc::new(Mutex::new(0u64));
    // Each holds its first lock before either takes its second.
    let both = Arc::new(Barrier::new(2));
    let (a, l, b) = (accounts.clone(), ledger.clone(), both.clone());
    let auditor = thread::Builder::new()
        .name("auditor".into())
        .spawn(move || {
            if opposite {
                let mut l = l.lock().unwrap();
                b.wait();
                *l += *a.lock().unwrap();
            } else {
                b.wait();
                let a = a.lock().unwrap();
                *l.lock().unwrap() += *a;
            }
        })
        .unwrap();
    {
        let a = accounts.lock().unwrap();
        if opposite {
            both.wait();
        }
        *ledger.lock().unwrap() += *a;
    }
    if !opposite {
        both.wait();
    }
    auditor.join().unwrap();
    println!("rustlocks {mode}: ok");
}
