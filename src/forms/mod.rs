//! Forms: what a site's forms are (`Form`, its fields `FieldSpec`), what a post to one becomes
//! (`accept`: a [`crate::domain::NewMessage`] or an error per field), and how a stored message's
//! fields read for people (`present`). Built from configuration once at start
//! (`crate::config::forms`), trusted afterwards.
//!
//! Two kinds of form:
//! - **open** (no `fields`): name, email, subject and message as always, and every other field a
//!   page posts is kept (bounded; see `accept`), the way Formspree works;
//! - **declared** (`fields = [...]`): exactly those fields, each checked by its type; anything else
//!   is refused by name, never dropped.

pub mod accept;
pub mod posted;
pub mod present;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::Mailbox;
use serde::Serialize;

use crate::templates::{TemplateError, Templates};

pub use accept::{Accepted, Rejected};
pub use posted::{Posted, PostedValue};
pub use present::{ShownField, shown_fields};

/// What kind of input a declared field is; each has its own check (see `accept`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Textarea,
    Email,
    Tel,
    Url,
    Number,
    Date,
    Select,
    Checkboxes,
    Checkbox,
    Hidden,
}

impl FieldKind {
    pub const ALL: [FieldKind; 11] = [
        FieldKind::Text,
        FieldKind::Textarea,
        FieldKind::Email,
        FieldKind::Tel,
        FieldKind::Url,
        FieldKind::Number,
        FieldKind::Date,
        FieldKind::Select,
        FieldKind::Checkboxes,
        FieldKind::Checkbox,
        FieldKind::Hidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Textarea => "textarea",
            FieldKind::Email => "email",
            FieldKind::Tel => "tel",
            FieldKind::Url => "url",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Select => "select",
            FieldKind::Checkboxes => "checkboxes",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Hidden => "hidden",
        }
    }

    pub fn parse(s: &str) -> Option<FieldKind> {
        FieldKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the field takes options (`select`, `checkboxes`).
    pub fn has_options(self) -> bool {
        matches!(self, FieldKind::Select | FieldKind::Checkboxes)
    }

    /// The most characters a value may have when the field sets no `max_length`.
    pub fn default_max_length(self) -> usize {
        match self {
            FieldKind::Textarea => crate::domain::message::MAX_BODY,
            _ => accept::MAX_EXTRA_VALUE,
        }
    }
}

/// Which of the message's own columns a declared field fills (the rest are kept as fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Core {
    Name,
    /// The address that gets verified.
    Email,
    Subject,
    Message,
}

/// One declared field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub label: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The one `email` field whose address is verified.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
}

impl FieldSpec {
    /// The column this field fills, if it is one of the message's own.
    pub fn core(&self) -> Option<Core> {
        match (self.kind, self.name.as_str()) {
            (FieldKind::Email, _) if self.verify => Some(Core::Email),
            (FieldKind::Text, "name") => Some(Core::Name),
            (FieldKind::Text, "subject") => Some(Core::Subject),
            (FieldKind::Text | FieldKind::Textarea, "message") => Some(Core::Message),
            _ => None,
        }
    }

    /// The most characters its value may have: the declared `max_length`, held to what the
    /// message's own column takes (name and subject 200, an address 254).
    pub fn max_length(&self) -> usize {
        use crate::domain::message::{MAX_NAME, MAX_SUBJECT};
        let declared = self.max_length.unwrap_or(self.kind.default_max_length());
        match self.core() {
            Some(Core::Name) => declared.min(MAX_NAME),
            Some(Core::Subject) => declared.min(MAX_SUBJECT),
            Some(Core::Email) => declared.min(254),
            _ => declared,
        }
    }
}

/// One form, with every per-form setting already resolved (the form's value, else the top-level
/// one).
#[derive(Clone, Debug)]
pub struct Form {
    /// `[a-z0-9-]{1,40}`: in `/f/{slug}` and stored with every message.
    pub slug: String,
    pub title: String,
    pub site_name: String,
    /// Where released messages go; empty: released but not mailed.
    pub staff_inbox: Vec<Mailbox>,
    /// Other sites whose pages may post this form (normalised origins).
    pub allowed_origins: Vec<String>,
    pub auto_release: bool,
    /// Where the visitor goes after posting and confirming; never taken from the request.
    pub thank_you_url: Option<String>,
    pub require_form_token: bool,
    pub ui_dir: Option<PathBuf>,
    /// None: an open form.
    pub fields: Option<Vec<FieldSpec>>,
    /// Where a released (or verified) message is also sent, besides the staff inbox.
    pub webhooks: Vec<crate::webhook::Webhook>,
    /// Mail the visitor a copy of what they sent once they confirm.
    pub confirmation_mail: bool,
}

impl Form {
    /// An open form with no settings of its own: no inbox, no other origins, formgate's pages.
    pub fn open(slug: &str, title: &str, site_name: &str) -> Form {
        Form {
            slug: slug.into(),
            title: title.into(),
            site_name: site_name.into(),
            staff_inbox: Vec::new(),
            allowed_origins: Vec::new(),
            auto_release: false,
            thank_you_url: None,
            require_form_token: false,
            ui_dir: None,
            fields: None,
            webhooks: Vec::new(),
            confirmation_mail: false,
        }
    }

    /// Its staff inboxes as one line (`a@x.org, Boss <b@x.org>`); empty when it has none.
    pub fn inboxes(&self) -> String {
        self.staff_inbox
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The field list visitors see: the declared one, or an open form's four.
    pub fn visible_fields(&self) -> Vec<FieldSpec> {
        match &self.fields {
            Some(fields) => fields.clone(),
            None => open_fields(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.fields.is_none()
    }

    /// The form's page and post address.
    pub fn path(&self, default: bool) -> String {
        if default {
            "/contact".into()
        } else {
            format!("/f/{}", self.slug)
        }
    }
}

fn spec(name: &str, kind: FieldKind, label: &str, required: bool, max: usize) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        kind,
        label: label.into(),
        required,
        max_length: Some(max),
        options: Vec::new(),
        min: None,
        max: None,
        help: None,
        verify: kind == FieldKind::Email,
    }
}

/// An open form's fields, as formgate has always had them.
pub fn open_fields() -> Vec<FieldSpec> {
    use crate::domain::message::{MAX_BODY, MAX_NAME, MAX_SUBJECT};
    vec![
        spec("name", FieldKind::Text, "Your name", true, MAX_NAME),
        spec("email", FieldKind::Email, "Your email", true, 254),
        spec("subject", FieldKind::Text, "Subject (optional)", false, MAX_SUBJECT),
        spec("message", FieldKind::Textarea, "Your message", true, MAX_BODY),
    ]
}

/// A form and the templates its pages and staff mail are rendered with (its own `ui_dir`, or the
/// site's).
pub struct Entry {
    pub form: Form,
    pub templates: Arc<Templates>,
    /// Whether this is `default_form` (served at `/` and `/contact`).
    pub default: bool,
    /// What the staff mail's subject starts with, in brackets: the form's title when the site has
    /// several forms, the site's name (as it always was) when it has one.
    pub mail_tag: String,
}

impl std::ops::Deref for Entry {
    type Target = Form;
    fn deref(&self) -> &Form {
        &self.form
    }
}

/// Every form of the site, looked up by slug.
pub struct Catalog {
    entries: Vec<Arc<Entry>>,
    by_slug: HashMap<String, usize>,
    default: usize,
    /// For a message whose form is no longer configured: an open form with the default form's
    /// settings.
    fallback: Arc<Entry>,
}

impl Catalog {
    /// `forms` in configuration order; `default` names one of them. `site` are the templates
    /// loaded from `site_dir` (the top-level `ui_dir`, which forms inherit); a form's own
    /// `ui_dir` is loaded here, once per folder.
    pub fn new(
        forms: Vec<Form>,
        default: &str,
        site: Arc<Templates>,
        site_dir: Option<&std::path::Path>,
    ) -> Result<Catalog, TemplateError> {
        let mut entries = Vec::with_capacity(forms.len());
        let several = forms.len() > 1;
        let mut loaded: HashMap<PathBuf, Arc<Templates>> = HashMap::new();
        if let Some(dir) = site_dir {
            loaded.insert(dir.to_path_buf(), site.clone());
        }
        for form in forms {
            let templates = match &form.ui_dir {
                None => site.clone(),
                Some(dir) => match loaded.get(dir) {
                    Some(t) => t.clone(),
                    None => {
                        let t = Arc::new(Templates::load(Some(dir))?);
                        loaded.insert(dir.clone(), t.clone());
                        t
                    }
                },
            };
            let is_default = form.slug == default;
            let mail_tag = if several {
                form.title.clone()
            } else {
                form.site_name.clone()
            };
            entries.push(Arc::new(Entry {
                form,
                templates,
                default: is_default,
                mail_tag,
            }));
        }
        let by_slug: HashMap<String, usize> = entries.iter().enumerate().map(|(i, e)| (e.slug.clone(), i)).collect();
        let default = by_slug.get(default).copied().unwrap_or(0);
        let fallback = Arc::new(Entry {
            form: Form {
                fields: None,
                ..entries[default].form.clone()
            },
            templates: entries[default].templates.clone(),
            default: false,
            mail_tag: entries[default].mail_tag.clone(),
        });
        Ok(Catalog {
            entries,
            by_slug,
            default,
            fallback,
        })
    }

    pub fn get(&self, slug: &str) -> Option<&Arc<Entry>> {
        self.by_slug.get(slug).map(|&i| &self.entries[i])
    }

    pub fn default_entry(&self) -> &Arc<Entry> {
        &self.entries[self.default]
    }

    /// The form a stored message is handled with: its own, or (its form was removed from the
    /// configuration) the default form's settings, as an open form.
    pub fn entry_of(&self, slug: &str) -> &Arc<Entry> {
        self.get(slug).unwrap_or(&self.fallback)
    }

    /// Whether the site has more than one form (the dashboard then shows a Form column).
    pub fn several(&self) -> bool {
        self.entries.len() > 1
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(slug: &str, ui_dir: Option<PathBuf>) -> Form {
        Form {
            ui_dir,
            ..Form::open(slug, &slug.to_uppercase(), "S")
        }
    }

    #[test]
    fn a_form_with_its_own_ui_dir_renders_its_own_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages")).unwrap();
        std::fs::write(dir.path().join("pages/confirmed.html"), "Thanks from {{ title }}").unwrap();
        let site = Arc::new(Templates::load(None).unwrap());
        let catalog = Catalog::new(
            vec![form("contact", None), form("jobs", Some(dir.path().to_path_buf()))],
            "contact",
            site,
            None,
        )
        .unwrap();
        let jobs = catalog.get("jobs").unwrap();
        let ctx = minijinja::context! { title => "JOBS", site_name => "S" };
        assert_eq!(
            jobs.templates.render("pages/confirmed.html", &ctx).unwrap(),
            "Thanks from JOBS"
        );
        let contact = catalog.default_entry();
        assert!(contact.default && contact.slug == "contact");
        assert!(
            contact
                .templates
                .render("pages/confirmed.html", &ctx)
                .unwrap()
                .contains("<h1>Thank you</h1>")
        );
        // A message of a form no longer configured is handled as an open form with the default's settings.
        assert!(catalog.entry_of("gone").is_open() && catalog.several());
        assert_eq!(
            jobs.mail_tag, "JOBS",
            "several forms: the staff mail is tagged with the form's title"
        );
    }
}
