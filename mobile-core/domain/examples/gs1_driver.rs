//! Small driver of the GS1 parser for instruction-count profiling (callgrind), where wall
//! time is too noisy on a shared machine, and for comparing verdicts with GS1's engine:
//!
//! ```text
//! cargo build --release -p swt-domain --example gs1_driver
//! valgrind --tool=callgrind target/release/examples/gs1_driver element 10000
//! valgrind --tool=callgrind target/release/examples/gs1_driver corpus 10 [CLASS]
//! target/release/examples/gs1_driver verdicts   # one line per corpus line
//! target/release/examples/gs1_driver report [FILE]  # everything a parse says, per line
//! ```
//!
//! Single inputs: `element`, `noaim`, `dl`, `bracketed`, then iterations. `corpus` parses
//! every line of `benches/data/gs1-mix.tsv` (or only those of one class) that many times.
//! `verdicts` prints `valid`, `not_gs1` or `invalid<TAB>code` per corpus line, in the
//! format of the engine driver's `verdicts` (`benches/gs1_engine_driver.c`); `report`
//! prints code, AI, position, message, AIs and warnings, to diff two builds' behaviour (of
//! the corpus, or of FILE: one input per line, the part after a tab if there is one).
//! Compare against a run with 0 iterations to subtract start-up. On 2026-12-07:
//! 1,832 instructions per parse over the corpus (`corpus 5` minus `corpus 0`), against
//! 7,877 for GS1's engine (`gs1_engine_driver … passes 5`, docs/benchmarks.md).

use std::fmt::Write as _;
use std::hint::black_box;

use swt_domain::gs1::{ParseOptions, parse};

const CORPUS: &[u8] = include_bytes!("../benches/data/gs1-mix.tsv");

fn corpus(class: Option<&str>) -> Vec<&'static [u8]> {
    CORPUS
        .split(|&c| c == b'\n')
        .filter_map(|line| {
            let tab = line.iter().position(|&c| c == b'\t')?;
            let c = line.get(..tab)?;
            if class.is_some_and(|want| want.as_bytes() != c) {
                return None;
            }
            line.get(tab + 1..)
        })
        .collect()
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut args = all.iter().cloned();
    let which = args.next().unwrap_or_else(|| "element".to_owned());
    let iters: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let opts = ParseOptions::default();
    let single: &[u8] = match which.as_str() {
        "element" => b"]d201095060001343521729010110ABC123\x1d21SN001",
        "noaim" => b"01003123456789061726123110A1B2C3\x1d21100000000001",
        "dl" => b"https://id.gs1.org/01/09506000134352/10/ABC123/21/SN001?17=290101",
        "bracketed" => b"(01)09506000134352(17)290101(10)ABC123(21)SN001",
        "corpus" => {
            let inputs = corpus(args.next().as_deref());
            let mut ok = 0usize;
            for _ in 0..iters {
                for input in &inputs {
                    let d = parse(black_box(input), black_box(&opts));
                    ok += usize::from(d.is_ok());
                    black_box(&d);
                }
            }
            println!("corpus: {ok}/{} parsed", inputs.len() * iters as usize);
            return;
        }
        "verdicts" => {
            for input in corpus(None) {
                match parse(input, &opts) {
                    Ok(_) => println!("valid"),
                    Err(e) if e.code() == "not_gs1" => println!("not_gs1"),
                    Err(e) => println!("invalid\t{}", e.code()),
                }
            }
            return;
        }
        "report" => {
            // `report FILE` reads one input per line (the part after a tab, if any).
            let file = all.get(1).map(std::fs::read).transpose();
            let file = file.unwrap_or_else(|e| {
                eprintln!("cannot read the input file: {e}");
                std::process::exit(2);
            });
            let inputs: Vec<&[u8]> = match &file {
                Some(bytes) => bytes
                    .split(|&c| c == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| match l.iter().position(|&c| c == b'\t') {
                        Some(t) => l.get(t + 1..).unwrap_or_default(),
                        None => l,
                    })
                    .collect(),
                None => corpus(None),
            };
            for input in inputs {
                let mut s = String::new();
                match parse(input, &opts) {
                    Ok(d) => {
                        let _ = write!(s, "ok {:?}", d.form());
                        for x in d.iter() {
                            let _ = write!(s, " ({}){}", x.ai, x.value);
                        }
                        for w in d.warnings() {
                            let _ = write!(s, " | {} {} {} {}", w.code(), w.ai(), w.offset(), w);
                        }
                    }
                    Err(e) => {
                        let _ = write!(s, "err {} {:?} {:?} {e}", e.code(), e.ai(), e.position());
                    }
                }
                println!("{}", s.replace('\u{1d}', "<GS>"));
            }
            return;
        }
        other => {
            eprintln!("unknown input {other}: use element, noaim, dl, bracketed or corpus");
            std::process::exit(2);
        }
    };
    let mut ok = 0u32;
    for _ in 0..iters {
        let d = parse(black_box(single), black_box(&opts));
        ok += u32::from(d.is_ok());
        black_box(&d);
    }
    println!("{which}: {ok}/{iters} parsed");
}
