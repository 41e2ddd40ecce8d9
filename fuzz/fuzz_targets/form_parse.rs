//! Any bytes, decoded as the contact form would be (form-encoded and JSON), then parsed: never a
//! panic, and an accepted message never carries CR, LF or NUL in a field that reaches a header.
#![no_main]

use formgate::domain::{ContactForm, NewMessage};
use libfuzzer_sys::fuzz_target;

fn check(form: &ContactForm) {
    if let Ok(m) = NewMessage::parse(form, None, None) {
        let subject = m.subject.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default();
        for field in [m.name.as_str(), m.email.as_str(), subject.as_str()] {
            assert!(!field.contains(['\r', '\n', '\0']), "{field:?}");
        }
        assert!(m.email.as_str().len() <= 254);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = serde_urlencoded::from_bytes::<ContactForm>(data) {
        check(&form);
    }
    if let Ok(form) = serde_json::from_slice::<ContactForm>(data) {
        check(&form);
    }
});
