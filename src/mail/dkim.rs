//! DKIM (RFC 6376): every mail formgate sends carries a signature by its own domain, made as the
//! last step before the bytes leave (`transport.rs`), so receivers can tell the mail is really
//! from the site and was not altered on the way.
//!
//! Signing is `c=relaxed/relaxed` with `a=rsa-sha256` or `a=ed25519-sha256` (RFC 8463), over the
//! headers of [`SIGNED_HEADERS`] that the mail has. Each of them is *oversigned* (named once more
//! than it occurs), so a relay cannot add a second From, Subject or Reply-To without breaking the
//! signature. The crypto is ring's (already in the tree for TLS); the canonicalisation is here.
//! Keys are PEM: RSA as PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`), 2048 to
//! 4096 bits; Ed25519 as PKCS#8.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::config::{ConfigError, DkimSettings};

/// The headers signed when the mail has them, in this order.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

/// Signs mails for one domain and selector; built once at start.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
    rng: SystemRandom,
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DkimSigner({}._domainkey.{}, {})",
            self.selector,
            self.domain,
            self.algorithm()
        )
    }
}

impl DkimSigner {
    /// Reads the key file the settings name; a key that cannot be read or used is a configuration
    /// error naming the file.
    pub fn load(settings: &DkimSettings, selector: &str) -> Result<DkimSigner, ConfigError> {
        let path = &settings.key_file;
        let fail = |message: String| ConfigError {
            key: "dkim_key_file".into(),
            message: format!("{}: {message}", path.display()),
            from: None,
        };
        let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        DkimSigner::from_pem(&settings.domain, selector, &pem).map_err(fail)
    }

    /// A signer from a PEM private key. The message says what is wrong with the key.
    pub fn from_pem(domain: &str, selector: &str, pem: &[u8]) -> Result<DkimSigner, String> {
        Ok(DkimSigner {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_ascii_lowercase(),
            key: parse_key(pem)?,
            rng: SystemRandom::new(),
        })
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SigningKey::Rsa(_) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Where receivers look the public key up: `formgate._domainkey.example.org`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record's value: `v=DKIM1; k=rsa; p=MIIB…`.
    pub fn record_value(&self) -> String {
        let (kind, public) = match &self.key {
            // An RSA key as a SubjectPublicKeyInfo, as `openssl rsa -pubout` prints it and every
            // published record holds it; an Ed25519 key as its bare 32 bytes (RFC 8463).
            SigningKey::Rsa(k) => ("rsa", rsa_subject_public_key_info(k.public().as_ref())),
            SigningKey::Ed25519(k) => ("ed25519", k.public_key().as_ref().to_vec()),
        };
        format!("v=DKIM1; k={kind}; p={}", BASE64.encode(public))
    }

    /// The record as a zone-file line, its value split into quoted strings of at most 255
    /// characters (the most one DNS character-string holds).
    pub fn zone_line(&self) -> String {
        let value = self.record_value();
        let strings: Vec<String> = value
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!("{}. IN TXT {}", self.record_name(), strings.join(" "))
    }

    /// `message` with a `DKIM-Signature` header in front, made at `now` (Unix seconds).
    pub fn sign(&self, message: &[u8], now: u64) -> Result<Vec<u8>, String> {
        let message = crlf(message);
        let (header_block, body) = split(&message);
        let fields = header_fields(header_block);

        let mut body_hash = ring::digest::Context::new(&ring::digest::SHA256);
        body_hash.update(&relaxed_body(body));
        let body_hash = BASE64.encode(body_hash.finish());

        // Each signed header as many times as it occurs, plus once (oversigning).
        let mut names: Vec<&str> = Vec::new();
        for name in SIGNED_HEADERS {
            let n = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .count();
            if n > 0 {
                names.extend(std::iter::repeat_n(*name, n + 1));
            }
        }

        let unsigned = self.unsigned_header(now, &names, &body_hash);
        let mut data = Vec::with_capacity(1024);
        // Instances are taken from the bottom up (RFC 6376 §5.4.2); a name left over adds nothing.
        let mut used: Vec<usize> = Vec::new();
        for name in &names {
            let found = fields
                .iter()
                .enumerate()
                .rev()
                .find(|(i, (n, _))| n.eq_ignore_ascii_case(name.as_bytes()) && !used.contains(i));
            if let Some((i, (_, raw))) = found {
                used.push(i);
                data.extend_from_slice(&relaxed_header(raw));
            }
        }
        let mut own = relaxed_header(unsigned.as_bytes());
        // The signature's own header goes in without its final CRLF (§3.7).
        own.truncate(own.len() - 2);
        data.extend_from_slice(&own);

        let signature = match &self.key {
            SigningKey::Rsa(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &self.rng, &data, &mut sig)
                    .map_err(|_| "DKIM: RSA signing failed".to_string())?;
                sig
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data, not the data.
            SigningKey::Ed25519(key) => key
                .sign(ring::digest::digest(&ring::digest::SHA256, &data).as_ref())
                .as_ref()
                .to_vec(),
        };
        let signature = BASE64.encode(signature);

        let mut out = Vec::with_capacity(unsigned.len() + signature.len() + message.len() + 16);
        out.extend_from_slice(unsigned.as_bytes());
        // b= may be folded anywhere: verifiers drop its value and the whitespace in it (§3.7).
        for (i, chunk) in signature.as_bytes().chunks(72).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n\t");
            }
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&message);
        Ok(out)
    }

    /// `DKIM-Signature: v=1; …; b=` folded to lines of at most 78 characters, without the
    /// signature itself.
    fn unsigned_header(&self, now: u64, names: &[&str], body_hash: &str) -> String {
        let mut folder = Folder::new("DKIM-Signature:");
        for tag in [
            "v=1".to_string(),
            format!("a={}", self.algorithm()),
            "c=relaxed/relaxed".to_string(),
            format!("d={}", self.domain),
            format!("s={}", self.selector),
            format!("t={now}"),
        ] {
            folder.word(&format!("{tag};"));
        }
        // h= may break after any colon.
        let list = names.join(":");
        let mut pieces = list.split_inclusive(':');
        if let Some(first) = pieces.next() {
            folder.word(&format!("h={first}"));
            for piece in pieces {
                folder.glued(piece);
            }
            folder.glued(";");
        }
        folder.word(&format!("bh={body_hash};"));
        folder.line_break();
        folder.glued("b=");
        folder.text
    }
}

/// Builds a header folded before words that would pass 78 characters.
struct Folder {
    text: String,
    line: usize,
}

impl Folder {
    const WIDTH: usize = 78;

    fn new(start: &str) -> Folder {
        Folder {
            text: start.to_string(),
            line: start.len(),
        }
    }

    /// A word after a space, or on a new line when it would not fit.
    fn word(&mut self, word: &str) {
        if self.line + 1 + word.len() > Self::WIDTH {
            self.line_break();
        } else {
            self.text.push(' ');
            self.line += 1;
        }
        self.push(word);
    }

    /// Text right after the last, or on a new line when it would not fit.
    fn glued(&mut self, text: &str) {
        if self.line + text.len() > Self::WIDTH {
            self.line_break();
        }
        self.push(text);
    }

    fn line_break(&mut self) {
        self.text.push_str("\r\n\t");
        self.line = 1;
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.line += text.len();
    }
}

/// A new Ed25519 private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), in the RFC 8410 form (version
/// 1, the seed alone): ring makes version 2, which OpenSSL 3.0 cannot read.
pub fn generate_ed25519_pem() -> Result<String, String> {
    const V2_PREFIX: &[u8] = &[
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    const V1_PREFIX: &[u8] = &[
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| "the system's random number generator failed".to_string())?;
    let v2 = v2.as_ref();
    let der = match v2.get(V2_PREFIX.len()..V2_PREFIX.len() + 32) {
        Some(seed) if v2.starts_with(V2_PREFIX) => [V1_PREFIX, seed].concat(),
        // Another layout from a later ring: keep what it made (formgate reads both).
        _ => v2.to_vec(),
    };
    let base64 = BASE64.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

const RSA_ADVICE: &str = "make a new one with `openssl genrsa -out FILE 2048`";

fn parse_key(pem: &[u8]) -> Result<SigningKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound => "no private key in it: expected an unencrypted \
             PEM key (`-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`)"
            .to_string(),
        e => format!("not a readable PEM file ({e})"),
    })?;
    match der {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der())
            .map(SigningKey::Rsa)
            .map_err(rsa_rejected),
        PrivateKeyDer::Pkcs8(k) => {
            let der = k.secret_pkcs8_der();
            let wrong = |e: &ring::error::KeyRejected| e.to_string() == "WrongAlgorithm";
            match (
                RsaKeyPair::from_pkcs8(der),
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der),
            ) {
                (Ok(k), _) => Ok(SigningKey::Rsa(k)),
                (_, Ok(k)) => Ok(SigningKey::Ed25519(k)),
                (Err(rsa), Err(ed)) if wrong(&rsa) && wrong(&ed) => {
                    Err("neither an RSA nor an Ed25519 key: DKIM signs with those two".to_string())
                }
                (Err(rsa), Err(ed)) if wrong(&ed) => Err(rsa_rejected(rsa)),
                (Err(rsa), Err(ed)) if wrong(&rsa) => Err(format!("not a valid Ed25519 key ({ed})")),
                (Err(rsa), Err(_)) => Err(format!("not a valid PKCS#8 key ({rsa})")),
            }
        }
        PrivateKeyDer::Sec1(_) => {
            Err("an EC (ECDSA) key: DKIM signs with RSA or Ed25519 only; ".to_string() + RSA_ADVICE)
        }
        _ => Err("neither an RSA nor an Ed25519 key: DKIM signs with those two".to_string()),
    }
}

fn rsa_rejected(e: ring::error::KeyRejected) -> String {
    match e.to_string().as_str() {
        "TooSmall" => format!("the RSA key is shorter than 2048 bits, which receivers no longer trust; {RSA_ADVICE}"),
        "TooLarge" => format!("the RSA key is longer than 4096 bits, more than formgate can sign with; {RSA_ADVICE}"),
        other => format!("not a valid RSA key ({other})"),
    }
}

/// An RSAPublicKey (PKCS#1 DER) wrapped as a SubjectPublicKeyInfo with the rsaEncryption OID.
fn rsa_subject_public_key_info(rsa_public_key: &[u8]) -> Vec<u8> {
    const RSA_ENCRYPTION: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x00];
    bits.extend_from_slice(rsa_public_key);
    let mut inner = RSA_ENCRYPTION.to_vec();
    inner.extend(der(0x03, &bits));
    der(0x30, &inner)
}

/// One DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(content.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = content.len().to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap_or(0));
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    out.extend_from_slice(content);
    out
}

/// The message with every bare LF made CRLF (what SMTP carries, and what the signature covers).
fn crlf(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = message
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || message[i - 1] != b'\r'));
    if !bare {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    for (i, b) in message.iter().enumerate() {
        if *b == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    std::borrow::Cow::Owned(out)
}

/// The header block (each field with its CRLF) and the body after the empty line.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// Each header field as (name, the whole field without its final CRLF), in order.
fn header_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < block.len() {
        let end = block[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(block.len(), |p| at + p);
        let continues = matches!(block[at], b' ' | b'\t');
        match fields.last_mut() {
            Some(last) if continues => last.1 = end,
            _ => fields.push((at, end)),
        }
        at = end + 2;
    }
    fields
        .into_iter()
        .map(|(start, end)| {
            let field = &block[start..end];
            let name = field.iter().position(|b| *b == b':').map_or(field, |c| &field[..c]);
            (trim_wsp(name), field)
        })
        .collect()
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s
        && is_wsp(*first)
    {
        s = rest;
    }
    while let [rest @ .., last] = s
        && is_wsp(*last)
    {
        s = rest;
    }
    s
}

/// Relaxed header canonicalisation (RFC 6376 §3.4.2) of one field (`Name: value`, maybe folded):
/// the name lower-cased, the value unfolded, runs of whitespace one space, none around the colon
/// or at the end; then CRLF.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|b| *b == b':').unwrap_or(field.len());
    let mut out: Vec<u8> = trim_wsp(&field[..colon]).to_ascii_lowercase();
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    // Whitespace becomes one space only between two other characters of the value.
    let (mut started, mut space) = (false, false);
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && started {
                    out.push(b' ');
                }
                (started, space) = (true, false);
                out.push(b);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Relaxed body canonicalisation (§3.4.4): whitespace at line ends dropped, other runs of it one
/// space, empty lines at the end dropped, and a non-empty body ending in CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = body
        .split(|b| *b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut out = Vec::with_capacity(line.len());
            let mut space = false;
            for &b in line {
                if is_wsp(b) {
                    space = true;
                } else {
                    if space {
                        out.push(b' ');
                    }
                    space = false;
                    out.push(b);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len());
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6376 §3.4.5, the example of relaxed canonicalisation.
    #[test]
    fn relaxed_canonicalisation_follows_the_rfc_example() {
        let message = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
        let (headers, body) = split(message);
        let canonical: Vec<u8> = header_fields(headers)
            .iter()
            .flat_map(|(_, raw)| relaxed_header(raw))
            .collect();
        assert_eq!(String::from_utf8_lossy(&canonical), "a:X\r\nb:Y Z\r\n");
        assert_eq!(String::from_utf8_lossy(&relaxed_body(body)), " C\r\nD E\r\n");
        // A colon inside the value is text like any other.
        assert_eq!(relaxed_header(b"Subject:  Re:  x "), b"subject:Re: x\r\n");
    }

    #[test]
    fn an_empty_body_canonicalises_to_nothing_and_a_last_line_gets_its_crlf() {
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"end"), b"end\r\n");
    }

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(&*crlf(b"A: x\nB: y\r\n\nbody\n"), b"A: x\r\nB: y\r\n\r\nbody\r\n");
        assert!(matches!(crlf(b"A: x\r\n"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn der_lengths_use_the_short_and_long_forms() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(der(0x04, &[]), vec![0x04, 0]);
        assert_eq!(&der(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&der(0x04, &[0; 270])[..4], &[0x04, 0x82, 0x01, 0x0e]);
    }

    fn ed25519() -> DkimSigner {
        DkimSigner::from_pem("Example.org", "formgate", generate_ed25519_pem().unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn a_generated_key_is_pkcs8_version_1_as_openssl_writes_it() {
        let pem = generate_ed25519_pem().unwrap();
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert!(matches!(&der, PrivateKeyDer::Pkcs8(_)));
        // SEQUENCE of 46 bytes, version 0, id-Ed25519, the 32-byte seed.
        assert_eq!(&der.secret_der()[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(der.secret_der().len(), 48);
    }

    #[test]
    fn the_signature_names_the_headers_present_each_once_more_than_it_occurs() {
        let message = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\nX-Other: no\r\n\r\nbody\r\n";
        let signed = String::from_utf8(ed25519().sign(message, 1_700_000_000).unwrap()).unwrap();
        let header = &signed[..signed.find("\r\nFrom:").unwrap()];
        assert!(
            header.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;"),
            "{header}"
        );
        let unfolded = header.replace("\r\n\t", "");
        assert!(unfolded.contains("d=example.org;"), "{header}");
        assert!(unfolded.contains("t=1700000000;"), "{header}");
        assert!(unfolded.contains("h=From:From:To:To:Subject:Subject;"), "{header}");
        assert!(header.lines().all(|l| l.len() <= 78), "{header}");
        assert!(signed.ends_with("\r\n\r\nbody\r\n"));
    }

    #[test]
    fn the_record_is_split_into_dns_strings_of_at_most_255_characters() {
        let signer = ed25519();
        assert_eq!(signer.record_name(), "formgate._domainkey.example.org");
        assert!(signer.record_value().starts_with("v=DKIM1; k=ed25519; p="));
        assert!(
            signer
                .zone_line()
                .starts_with("formgate._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p=")
        );
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_with_the_reason() {
        let e = DkimSigner::from_pem("example.org", "s", b"not a key").unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let e = DkimSigner::from_pem(
            "example.org",
            "s",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(
            e.contains("neither an RSA nor an Ed25519 key") || e.contains("not a valid"),
            "{e}"
        );
    }
}
