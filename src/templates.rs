//! The wording visitors see: pages and mails live in `ui/`, are compiled into the binary, and can
//! be overridden file by file from `ui_dir` (a site owner's own branding). All templates are loaded
//! at start, so a broken override fails `formgate serve` at once instead of on a visitor's request.
//!
//! Escaping: `.html` templates auto-escape every value (minijinja's default for that extension), so
//! visitor text can never become markup; `.txt` templates are plain text.

use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

/// (name, built-in text). The names are the paths under `ui/`.
const BUILTIN: &[(&str, &str)] = &[
    ("pages/layout.html", include_str!("../ui/pages/layout.html")),
    ("pages/form.html", include_str!("../ui/pages/form.html")),
    ("pages/sent.html", include_str!("../ui/pages/sent.html")),
    ("pages/confirm.html", include_str!("../ui/pages/confirm.html")),
    ("pages/confirmed.html", include_str!("../ui/pages/confirmed.html")),
    ("pages/suppress.html", include_str!("../ui/pages/suppress.html")),
    ("pages/suppressed.html", include_str!("../ui/pages/suppressed.html")),
    ("pages/invalid.html", include_str!("../ui/pages/invalid.html")),
    ("pages/expired.html", include_str!("../ui/pages/expired.html")),
    ("pages/error.html", include_str!("../ui/pages/error.html")),
    (
        "email/verify.subject.txt",
        include_str!("../ui/email/verify.subject.txt"),
    ),
    ("email/verify.txt", include_str!("../ui/email/verify.txt")),
    ("email/verify.html", include_str!("../ui/email/verify.html")),
    (
        "email/release.subject.txt",
        include_str!("../ui/email/release.subject.txt"),
    ),
    ("email/release.txt", include_str!("../ui/email/release.txt")),
    ("email/release.html", include_str!("../ui/email/release.html")),
    (
        "email/confirmation.subject.txt",
        include_str!("../ui/email/confirmation.subject.txt"),
    ),
    ("email/confirmation.txt", include_str!("../ui/email/confirmation.txt")),
    ("email/confirmation.html", include_str!("../ui/email/confirmation.html")),
];

/// The stylesheet served at `/assets/formgate.css` (external, so the CSP can forbid inline styles).
pub const STYLESHEET: &str = include_str!("../ui/pages/formgate.css");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template override {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template {name}: {source}")]
    Syntax { name: String, source: minijinja::Error },
    #[error(
        "template override {path} is from an older formgate: this version gives it `{wants}` instead of \
         `{gone}`, so it would show an empty page; copy the built-in ui/{name} again and re-apply your changes"
    )]
    Outdated {
        path: String,
        name: &'static str,
        wants: &'static str,
        gone: &'static str,
    },
}

/// Overrides written for an older formgate that would now render blank, because the values they
/// show are no longer passed: (template, a value it must use now, the value it used before). An
/// override that never mentions the new value is refused at start rather than shown empty.
const RENAMED_VALUES: &[(&str, &str, &str)] = &[
    ("pages/error.html", "reason", "message"),
    ("pages/sent.html", "resent", "notice"),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn load(ui_dir: Option<&Path>) -> Result<Self, TemplateError> {
        // Lenient undefined values: `errors.email` on a form without errors is simply empty.
        let mut env = Environment::new();
        for (name, builtin) in BUILTIN {
            let text = match ui_dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
                    if let Some(&(name, wants, gone)) = RENAMED_VALUES
                        .iter()
                        .find(|(n, wants, _)| n == name && !text.contains(wants))
                    {
                        return Err(TemplateError::Outdated {
                            path: path.display().to_string(),
                            name,
                            wants,
                            gone,
                        });
                    }
                    text
                }
                None => (*builtin).to_string(),
            };
            env.add_template_owned(name.to_string(), text)
                .map_err(|source| TemplateError::Syntax {
                    name: name.to_string(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    /// Renders a template; fails only on a broken override (e.g. a filter that does not exist).
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_from_before_the_reason_field_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages")).unwrap();
        std::fs::write(
            dir.path().join("pages/error.html"),
            "<h1>{{ title }}</h1><p>{{ message }}</p>",
        )
        .unwrap();
        let e = Templates::load(Some(dir.path()))
            .err()
            .expect("an outdated override fails");
        let text = e.to_string();
        assert!(text.contains("pages/error.html") && text.contains("`reason`"), "{text}");
        std::fs::write(dir.path().join("pages/error.html"), "{{ reason }}").unwrap();
        std::fs::write(dir.path().join("pages/sent.html"), "{{ notice }}").unwrap();
        let text = Templates::load(Some(dir.path()))
            .err()
            .expect("sent.html too")
            .to_string();
        assert!(text.contains("`resent`"), "{text}");
    }

    #[test]
    fn builtins_load_and_escape_html() {
        let t = Templates::load(None).unwrap();
        let html = t
            .render(
                "pages/form.html",
                minijinja::context! {
                    site_name => "S",
                    fields => vec![minijinja::context! { name => "name", kind => "text", widget => "input", label => "<b>Name</b>", max_length => 200 }],
                    values => minijinja::context! { name => vec!["<script>x</script>"] },
                    errors => minijinja::context! {},
                },
            )
            .unwrap();
        assert!(html.contains("value=\"&lt;script&gt;x&lt;"), "{html}");
        assert!(!html.contains("<script>x") && !html.contains("<b>Name"));
    }

    #[test]
    fn an_override_replaces_one_template_and_a_broken_one_fails_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(
            dir.path().join("email/verify.subject.txt"),
            "Please confirm ({{ site_name }})",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(
            t.render("email/verify.subject.txt", minijinja::context! { site_name => "X" })
                .unwrap(),
            "Please confirm (X)"
        );
        std::fs::write(dir.path().join("email/verify.subject.txt"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
