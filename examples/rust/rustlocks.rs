//! rustlocks: a Rust program whose threads deadlock on `std::sync::Mutex`
//! (futexes that record no holder, which holdcheck cannot read).
//!
//!   rustlocks deadlock   main and "auditor" take `accounts` and `ledger`
//!                        in opposite orders: a deadlock, for ever
//!   rustlocks ordered    both take them in the same order: exits 0
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let opposite = match mode.as_str() {
        "deadlock" => true,
        "ordered" => false,
        _ => {
            eprintln!("usage: rustlocks deadlock|ordered");
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
