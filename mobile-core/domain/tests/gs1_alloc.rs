//! A failed parse allocates nothing: the error keeps facts, and the message is only put
//! together when asked for. Counted with a global allocator, in a test binary of its own
//! with a single test, so no other thread allocates meanwhile.

use swt_domain::gs1::{ParseOptions, parse};

#[path = "../../benches/support/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

#[test]
fn errors_allocate_nothing_until_a_message_is_asked_for() {
    let opts = ParseOptions::default();
    let invalid: &[&[u8]] = &[
        b"]d20109506000134353",                         // check digit
        b"]d2010950600013435217291301",                 // month
        b"0109506000134352270101",                      // unknown AI
        b"(01)09506000134352(999)1",                    // unknown bracketed AI
        b"https://example.com/01/09506000134352?999=1", // unknown query AI
        b"]d20109506000134352(10)AB CD",                // character set
        b"]d221ABC",                                    // requisite
        b"(10)A(10)B(01)09506000134352",                // repeated, different values
        b"(01)09506000134352(422)999",                  // not in the country list
        b"]d1WAREHOUSE-A12",                            // not GS1
        b"HtTpS://id.gs1.org/01/09506000134352",        // not GS1
        b"]X0ABC",                                      // symbology
        b"HELLO",                                       // plain text
        b"",                                            // nothing
    ];
    for input in invalid {
        let before = alloc::calls();
        let e = parse(input, &opts).expect_err("invalid input");
        let during = alloc::calls() - before;
        assert_eq!(
            during,
            0,
            "{:?}: {} allocated",
            String::from_utf8_lossy(input),
            e.code()
        );
        // The words are still there when asked for.
        assert!(!e.to_string().is_empty());
    }
}
