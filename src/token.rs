//! Signed, expiring, single-use links without a token table.
//!
//! A token is `v1.<message id>.<expiry>.<mac>`: the MAC (HMAC-SHA256, URL-safe base64) covers a
//! length-prefixed (purpose, version, id, expiry, nonce). The nonce is the message's current
//! verification nonce, which changes when the message is confirmed or a verification is resent,
//! so each link works once and a resend revokes older links. Keys are a list: the first signs,
//! all verify, so a key can be rotated without breaking links already in mailboxes.
//!
//! Pure: no clock, no database. Callers pass `now` and look the nonce up themselves.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::MessageId;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
const MAC_LEN: usize = 32;
/// How far a token's implied issue time may lie in the future (clock skew between instances).
const FUTURE_SKEW_SECS: i64 = 60;

/// What a token is for; a token made for one purpose never passes for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The link in the verification mail.
    Verify,
    /// Handed to the visitor's browser after posting: lets the "check your inbox" page take the
    /// code or ask for a resend for this one message, without exposing guessable ids.
    Receipt,
    /// The "I didn't send this" link in the verification mail, signed over the (lower-cased)
    /// address: following it suppresses the address, not just one message.
    Suppress,
    /// The contact form page's time field: signed over when the page was served (the bot filter's
    /// time trap).
    Form,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Receipt => "receipt",
            Purpose::Suppress => "suppress",
            Purpose::Form => "form",
        }
    }
}

/// Signing keys, at least one. Debug never prints them.
#[derive(Clone)]
pub struct Keys(Vec<Vec<u8>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys([{} redacted])", self.0.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired { id: MessageId },
}

/// A token split into its parts, signature not yet checked. Only `id` may be used, and only to
/// look up the nonce needed by [`Unverified::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub id: MessageId,
    expires_at: i64,
    mac: Vec<u8>,
}

impl Keys {
    pub fn new(keys: Vec<Vec<u8>>) -> Result<Self, &'static str> {
        if keys.is_empty() {
            return Err("at least one signing key is needed");
        }
        if keys.iter().any(|k| k.len() < 32) {
            return Err("each signing key must be at least 32 bytes");
        }
        Ok(Self(keys))
    }

    fn mac(key: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        #[allow(clippy::expect_used)]
        HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
    }

    fn feed(mac: &mut HmacSha256, fields: &[&[u8]]) {
        // Length-prefixed so that no two different field lists produce the same input.
        for field in fields {
            // A field is a few bytes to a few hundred; u32 keeps the token format as it is.
            mac.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            mac.update(field);
        }
    }

    fn token_mac(key: &[u8], purpose: Purpose, id: MessageId, expires_at: i64, nonce: &str) -> HmacSha256 {
        let mut mac = Self::mac(key);
        let (id, exp) = (id.0.to_string(), expires_at.to_string());
        Self::feed(
            &mut mac,
            &[
                purpose.label().as_bytes(),
                VERSION.as_bytes(),
                id.as_bytes(),
                exp.as_bytes(),
                nonce.as_bytes(),
            ],
        );
        mac
    }

    /// Signs with the first key.
    pub fn sign(&self, purpose: Purpose, id: MessageId, expires_at: i64, nonce: &str) -> String {
        let tag = Self::token_mac(&self.0[0], purpose, id, expires_at, nonce)
            .finalize()
            .into_bytes();
        format!("{VERSION}.{}.{}.{}", id.0, expires_at, URL_SAFE_NO_PAD.encode(tag))
    }

    /// The short numeric code printed in the verification mail, for visitors who read their mail
    /// on another device. Derived from the key, the message and its nonce: no storage, and a
    /// resend changes it. `key_index` picks the key (0 signs; all are tried when checking).
    fn code_with(&self, key_index: usize, id: MessageId, nonce: &str) -> String {
        let mut mac = Self::mac(&self.0[key_index]);
        Self::feed(
            &mut mac,
            &[
                b"code",
                VERSION.as_bytes(),
                id.0.to_string().as_bytes(),
                nonce.as_bytes(),
            ],
        );
        let out = mac.finalize().into_bytes();
        let n = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) % 1_000_000;
        format!("{n:06}")
    }

    pub fn code(&self, id: MessageId, nonce: &str) -> String {
        self.code_with(0, id, nonce)
    }

    /// Constant-time check of a typed code against every key (spaces and dashes ignored).
    pub fn check_code(&self, id: MessageId, nonce: &str, typed: &str) -> bool {
        let typed: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let mut ok = subtle::Choice::from(0);
        for i in 0..self.0.len() {
            let expected = self.code_with(i, id, nonce);
            if typed.len() == expected.len() {
                ok |= expected.as_bytes().ct_eq(typed.as_bytes());
            }
        }
        ok.into()
    }
}

/// Splits a token into its parts; nothing is trusted until [`Unverified::verify`].
pub fn parse(token: &str) -> Result<Unverified, TokenError> {
    let mut parts = token.split('.');
    let (Some(version), Some(id), Some(exp), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if version != VERSION {
        return Err(TokenError::Malformed);
    }
    // Only canonical decimal: no sign, no leading zeros, so one id has one spelling.
    let canonical = |s: &str| {
        !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) && !(s.len() > 1 && s.starts_with('0'))
    };
    if !canonical(id) || !canonical(exp) {
        return Err(TokenError::Malformed);
    }
    let id = id.parse::<i64>().map_err(|_| TokenError::Malformed)?;
    let expires_at = exp.parse::<i64>().map_err(|_| TokenError::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Malformed)?;
    if mac.len() != MAC_LEN || id <= 0 {
        return Err(TokenError::Malformed);
    }
    Ok(Unverified {
        id: MessageId(id),
        expires_at,
        mac,
    })
}

impl Unverified {
    /// Checks the signature against every key (constant time, `verify_slice`), then the time:
    /// expired once `now > expiry`; rejected if its implied issue time (expiry − ttl) is in the future.
    /// Returns the expiry.
    pub fn verify(
        &self,
        keys: &Keys,
        purpose: Purpose,
        nonce: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<i64, TokenError> {
        let signed = keys.0.iter().any(|key| {
            Keys::token_mac(key, purpose, self.id, self.expires_at, nonce)
                .verify_slice(&self.mac)
                .is_ok()
        });
        if !signed {
            return Err(TokenError::BadSignature);
        }
        if self.expires_at.saturating_sub(ttl_secs) > now.saturating_add(FUTURE_SKEW_SECS) {
            return Err(TokenError::BadSignature);
        }
        if now > self.expires_at {
            return Err(TokenError::Expired { id: self.id });
        }
        Ok(self.expires_at)
    }
}

/// `N` bytes from the operating system's random source (nonces, Message-IDs, worker names).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without the OS random source nothing formgate signs or names would be unguessable: stopping
    // is the only safe answer, and on Linux getrandom(2) does not fail once the pool is ready.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TTL: i64 = 72 * 3600;
    const NOW: i64 = 1_800_000_000;

    fn keys() -> Keys {
        Keys::new(vec![vec![7u8; 32]]).unwrap()
    }

    fn check(keys: &Keys, token: &str, nonce: &str, now: i64) -> Result<i64, TokenError> {
        parse(token)?.verify(keys, Purpose::Verify, nonce, now, TTL)
    }

    #[test]
    fn round_trip() {
        let t = keys().sign(Purpose::Verify, MessageId(42), NOW + TTL, "n1");
        assert!(t.starts_with("v1.42."));
        assert_eq!(check(&keys(), &t, "n1", NOW), Ok(NOW + TTL));
        assert!(
            t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe: {t}"
        );
    }

    #[test]
    fn expired_at_exp_plus_one_second() {
        let exp = NOW + 10;
        let t = keys().sign(Purpose::Verify, MessageId(1), exp, "n");
        assert!(check(&keys(), &t, "n", exp).is_ok());
        assert_eq!(
            check(&keys(), &t, "n", exp + 1),
            Err(TokenError::Expired { id: MessageId(1) })
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_rejected() {
        let t = keys().sign(Purpose::Verify, MessageId(1), NOW + TTL + 3600, "n");
        assert_eq!(check(&keys(), &t, "n", NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_new_nonce_revokes_the_link() {
        let t = keys().sign(Purpose::Verify, MessageId(1), NOW + 60, "old");
        assert_eq!(check(&keys(), &t, "new", NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn purposes_do_not_mix() {
        let t = keys().sign(Purpose::Receipt, MessageId(1), NOW + 60, "");
        assert_eq!(check(&keys(), &t, "", NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn rotation_keeps_old_links_valid_while_the_old_key_is_listed() {
        let old = Keys::new(vec![vec![1u8; 32]]).unwrap();
        let t = old.sign(Purpose::Verify, MessageId(9), NOW + 60, "n");
        let rotated = Keys::new(vec![vec![2u8; 32], vec![1u8; 32]]).unwrap();
        assert!(check(&rotated, &t, "n", NOW).is_ok());
        let new_token = rotated.sign(Purpose::Verify, MessageId(9), NOW + 60, "n");
        assert_eq!(check(&old, &new_token, "n", NOW), Err(TokenError::BadSignature));
        let dropped = Keys::new(vec![vec![2u8; 32]]).unwrap();
        assert_eq!(check(&dropped, &t, "n", NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn field_swaps_and_reencodings_are_rejected() {
        let k = keys();
        let t = k.sign(Purpose::Verify, MessageId(12), NOW + 34, "n");
        let p: Vec<&str> = t.split('.').collect();
        let swapped = format!("v1.{}.{}.{}", p[2], p[1], p[3]);
        assert!(check(&k, &swapped, "n", NOW).is_err());
        for bad in [
            format!("v2.{}.{}.{}", p[1], p[2], p[3]),
            format!("v1.0{}.{}.{}", p[1], p[2], p[3]),
            format!("v1.+{}.{}.{}", p[1], p[2], p[3]),
            format!("{t}."),
            format!("{t}="),
            "".to_string(),
            "v1...".to_string(),
        ] {
            assert!(check(&k, &bad, "n", NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_are_six_digits_tied_to_message_and_nonce() {
        let k = keys();
        let c = k.code(MessageId(5), "n");
        assert_eq!(c.len(), 6);
        assert!(k.check_code(MessageId(5), "n", &c));
        assert!(k.check_code(MessageId(5), "n", &format!("{} {}", &c[..3], &c[3..])));
        assert!(!k.check_code(MessageId(6), "n", &c) || k.code(MessageId(6), "n") == c);
        assert!(!k.check_code(MessageId(5), "other", &c) || k.code(MessageId(5), "other") == c);
        assert!(!k.check_code(MessageId(5), "n", ""));
        assert!(!k.check_code(MessageId(5), "n", &format!("{c}0")));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Keys::new(vec![]).is_err());
        assert!(Keys::new(vec![vec![0u8; 31]]).is_err());
    }

    proptest! {
        #[test]
        fn any_signed_token_round_trips(id in 1i64..i64::MAX, offset in 0i64..TTL, nonce in "[a-zA-Z0-9]{0,40}") {
            let k = keys();
            let t = k.sign(Purpose::Verify, MessageId(id), NOW + offset, &nonce);
            prop_assert_eq!(check(&k, &t, &nonce, NOW), Ok(NOW + offset));
        }

        #[test]
        fn every_bit_flip_is_rejected(id in 1i64..1_000_000, byte in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = keys();
            let t = k.sign(Purpose::Verify, MessageId(id), NOW + 100, "nonce");
            let mut bytes = t.clone().into_bytes();
            let i = byte.index(bytes.len());
            bytes[i] ^= 1 << bit;
            if let Ok(flipped) = String::from_utf8(bytes) {
                // base64's decoder rejects non-canonical trailing bits, so no flip has a twin spelling.
                prop_assert!(check(&k, &flipped, "nonce", NOW).is_err(), "{} accepted", flipped);
            }
        }

        #[test]
        fn every_truncation_is_rejected(cut in 0usize..200) {
            let k = keys();
            let t = k.sign(Purpose::Verify, MessageId(77), NOW + 100, "nonce");
            let cut = cut % t.len();
            prop_assert!(check(&k, &t[..cut], "nonce", NOW).is_err());
        }

        #[test]
        fn arbitrary_strings_never_verify_or_panic(s in ".{0,120}") {
            prop_assert!(check(&keys(), &s, "nonce", NOW).is_err());
        }

        /// A token made for one purpose never passes for another: a suppress link is not a
        /// verification link, a form token is not a receipt, and so on.
        #[test]
        fn no_purpose_passes_for_another(id in 1i64..1_000_000, a in 0usize..4, b in 0usize..4, nonce in "[a-z@.]{0,30}") {
            let all = [Purpose::Verify, Purpose::Receipt, Purpose::Suppress, Purpose::Form];
            let k = keys();
            let t = k.sign(all[a], MessageId(id), NOW + 100, &nonce);
            let got = parse(&t).unwrap().verify(&k, all[b], &nonce, NOW, TTL);
            prop_assert_eq!(got.is_ok(), a == b);
        }

        /// A suppress link is signed over the address: it does not work for another one.
        #[test]
        fn a_suppress_token_is_bound_to_its_address(local in "[a-z]{1,20}", other in "[a-z]{1,20}") {
            prop_assume!(local != other);
            let k = keys();
            let addr = format!("{local}@example.org");
            let t = k.sign(Purpose::Suppress, MessageId(9), NOW + 100, &addr);
            let p = parse(&t).unwrap();
            prop_assert!(p.verify(&k, Purpose::Suppress, &addr, NOW, TTL).is_ok());
            let other = format!("{}@example.org", other);
            prop_assert!(p.verify(&k, Purpose::Suppress, &other, NOW, TTL).is_err());
        }

        #[test]
        fn arbitrary_strings_never_pass_as_form_or_suppress_tokens(s in ".{0,120}") {
            let p = parse(&s);
            if let Ok(p) = p {
                prop_assert!(p.verify(&keys(), Purpose::Form, "", NOW, TTL).is_err());
                prop_assert!(p.verify(&keys(), Purpose::Suppress, "a@example.org", NOW, TTL).is_err());
            }
        }
    }
}
