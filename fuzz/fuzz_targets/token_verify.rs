//! Any string as a token of any purpose: parsing and verifying never panic, and nothing but a
//! token formgate signed ever verifies.
#![no_main]

use formgate::token::{Keys, Purpose, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let keys = Keys::new(vec![vec![7u8; 32]]).expect("a valid key");
    if let Ok(t) = parse(s) {
        for purpose in [Purpose::Verify, Purpose::Receipt, Purpose::Suppress, Purpose::Form] {
            for nonce in ["", "nonce", "a@example.org"] {
                for now in [0, 1_800_000_000, i64::MAX] {
                    assert!(t.verify(&keys, purpose, nonce, now, 72 * 3600).is_err(), "{s}");
                }
            }
        }
    }
});
