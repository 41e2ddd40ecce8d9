//! The SSH host key: an Ed25519 key in OpenSSH format, generated on first start (mode 0600,
//! never overwriting one another instance wrote a moment ago) and read afterwards, so the
//! fingerprint moderators pinned stays the same across restarts and across instances.

use std::path::Path;

use anyhow::Context;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey};

/// The key at `path`, made if there is none; `true` when this call made it.
pub fn load_or_create(path: &Path) -> anyhow::Result<(PrivateKey, bool)> {
    if !path.exists() {
        let mut key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519)
            .context("generating the SSH host key")?;
        key.set_comment("formgate host key");
        let text = key.to_openssh(LineEnding::LF).context("encoding the SSH host key")?;
        match crate::config::write_secret_file(path, &text) {
            Ok(()) => return Ok((key, true)),
            // Another instance made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot create the SSH host key {} (config key `ssh_host_key_file`)",
                        path.display()
                    )
                });
            }
        }
    }
    Ok((load(path)?, false))
}

/// The key at `path`, which must exist.
pub fn load(path: &Path) -> anyhow::Result<PrivateKey> {
    let key = russh::keys::load_secret_key(path, None).with_context(|| {
        format!(
            "cannot read the SSH host key {} (config key `ssh_host_key_file`)",
            path.display()
        )
    })?;
    Ok(key)
}

/// As `ssh-keygen -l` and a connecting client print it: `SHA256:…`.
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}
