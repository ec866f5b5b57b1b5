//! The UniFFI bindings generator, kept in its own crate so ordinary builds never compile it.
fn main() {
    uniffi::uniffi_bindgen_main()
}
