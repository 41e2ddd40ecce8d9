//! `formgate dkim-record [--generate FILE]`: the DNS TXT record that publishes the DKIM key, so
//! receivers can check the signatures `serve` puts on every mail; with `--generate`, a new key
//! first. Read from the configuration and the key file alone (no database).

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::config::write_secret_file;
use crate::mail::DkimSigner;
use crate::mail::dkim::generate_ed25519_pem;

pub fn record(config: &Config, generate: Option<&Path>) -> ExitCode {
    match generate {
        Some(path) => generate_key(config, path),
        None => configured(config),
    }
}

/// The record for the configured key.
fn configured(config: &Config) -> ExitCode {
    let Some(dkim) = &config.dkim else {
        eprintln!(
            "formgate: DKIM is not configured: set dkim_domain and dkim_key_file, or make a key with \
             `formgate dkim-record --generate FILE`"
        );
        return ExitCode::from(2);
    };
    match DkimSigner::load(dkim, &config.dkim_selector) {
        Ok(signer) => {
            print!("{}", record_text(&signer));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("formgate: {e}");
            ExitCode::from(2)
        }
    }
}

/// A new Ed25519 key in `path`, then its record and the configuration lines that use it.
fn generate_key(config: &Config, path: &Path) -> ExitCode {
    // The signing domain: the configured one, else the domain mails are from (what DMARC checks
    // the signature against).
    let domain = match &config.dkim {
        Some(dkim) => dkim.domain.clone(),
        None => config.mail_from.email.domain().to_ascii_lowercase(),
    };
    if domain == "localhost" || !domain.contains('.') {
        eprintln!(
            "formgate: which domain signs? set mail_from to your address (or dkim_domain to its domain) first; \
             it is `{domain}` now"
        );
        return ExitCode::from(2);
    }
    let pem = match generate_ed25519_pem() {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("formgate: cannot make a key: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signer = match DkimSigner::from_pem(&domain, &config.dkim_selector, pem.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("formgate: the new key does not load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write_secret_file(path, &pem) {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "it exists, and formgate never overwrites a key (a published record may point at it): \
             name a new file, or remove this one first"
                .to_string()
        } else {
            e.to_string()
        };
        eprintln!("formgate: cannot write {}: {why}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "; wrote a new Ed25519 key to {} (mode 0600); keep it secret",
        path.display()
    );
    println!(";");
    print!("{}", record_text(&signer));
    println!(";");
    println!("; then add to formgate.toml:");
    println!("; dkim_domain = \"{domain}\"");
    println!("; dkim_selector = \"{}\"", config.dkim_selector);
    println!("; dkim_key_file = \"{}\"", path.display());
    println!(";");
    println!("; Not every receiver checks Ed25519 signatures yet (RFC 8463, 2018). For the widest reach use");
    println!("; RSA: `openssl genrsa -out dkim-rsa.pem 2048`, set dkim_key_file to it and run");
    println!("; `formgate dkim-record` again for its record.");
    ExitCode::SUCCESS
}

/// The zone-file line, then the same record as a DNS provider's web form asks for it; the extra
/// lines are zone-file comments, so the whole text can be pasted into a zone.
fn record_text(signer: &DkimSigner) -> String {
    format!(
        "{}\n; in a DNS provider's form: type TXT, name `{}` (some forms want only the part before\n; your zone's name), value:\n; {}\n",
        signer.zone_line(),
        signer.record_name(),
        signer.record_value()
    )
}
