//! Small driver for instruction-count profiling of the GS1 parser (callgrind), where wall
//! time is too noisy on a shared machine:
//!
//! ```text
//! cargo build --release -p swt-domain --example gs1_driver
//! valgrind --tool=callgrind target/release/examples/gs1_driver element 10000
//! ```
//!
//! Arguments: which input (`element`, `noaim`, `dl`, `bracketed`) and iterations. Compare
//! against a run with 0 iterations to subtract start-up.

use std::hint::black_box;

use swt_domain::gs1::{ParseOptions, parse};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "element".to_owned());
    let iters: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let input: &[u8] = match which.as_str() {
        "element" => b"]d201095060001343521729010110ABC123\x1d21SN001",
        "noaim" => b"01003123456789061726123110A1B2C3\x1d21100000000001",
        "dl" => b"https://id.gs1.org/01/09506000134352/10/ABC123/21/SN001?17=290101",
        "bracketed" => b"(01)09506000134352(17)290101(10)ABC123(21)SN001",
        other => {
            eprintln!("unknown input {other}: use element, noaim, dl or bracketed");
            std::process::exit(2);
        }
    };
    let opts = ParseOptions::default();
    let mut ok = 0u32;
    for _ in 0..iters {
        let d = parse(black_box(input), black_box(&opts));
        ok += u32::from(d.is_ok());
        black_box(&d);
    }
    println!("{which}: {ok}/{iters} parsed");
}
