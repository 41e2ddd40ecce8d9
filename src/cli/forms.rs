//! `formgate forms` and `formgate forms snippet SLUG`: what the configuration says the site's forms
//! are, read from the configuration alone (no database), and an HTML form for a page of one's own.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::config::Config;
use crate::domain::message::{MAX_NAME, MAX_SUBJECT};
use crate::forms::accept::HONEYPOTS;
use crate::forms::{Core, FieldKind, FieldSpec, Form};

use super::output::safe;

fn slugs(forms: &[Form]) -> String {
    forms.iter().map(|f| f.slug.as_str()).collect::<Vec<_>>().join(", ")
}

/// `--form SLUG` names a configured form; otherwise says which there are (exit 2: bad usage).
/// Whether `slug` (when given) names a form; if not, says so on `err` (usage error: exit 2).
pub fn known(config: &Config, slug: Option<&str>, err: &mut (dyn std::io::Write + Send)) -> Result<(), u8> {
    let Some(slug) = slug else { return Ok(()) };
    let forms = config.forms();
    if forms.iter().any(|f| f.slug == slug) {
        return Ok(());
    }
    let _ = writeln!(
        err,
        "formgate: there is no form `{}`; the forms are {}",
        safe(slug),
        slugs(&forms)
    );
    Err(2)
}

/// One block per form, in configuration order.
pub fn list(config: &Config) -> anyhow::Result<()> {
    let base = config.link_base();
    let mut out = String::new();
    for (i, form) in config.forms().iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        describe(&mut out, form, form.slug == config.default_form, &base);
    }
    print!("{out}");
    Ok(())
}

fn describe(out: &mut String, form: &Form, default: bool, base: &str) {
    let own = format!("{base}/f/{}", form.slug);
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "{}{}  {}",
        form.slug,
        if default { " (default)" } else { "" },
        safe(&form.title)
    );
    if default {
        let _ = writeln!(out, "  page             {own}  and  {base}/contact  (and {base}/)");
        let _ = writeln!(out, "  post             {own}  or  {base}/contact");
    } else {
        let _ = writeln!(out, "  page             {own}");
        let _ = writeln!(out, "  post             {own}");
    }
    let _ = writeln!(out, "  schema           {own}/schema");
    match &form.fields {
        None => {
            let _ = writeln!(
                out,
                "  fields           open: name, email, subject, message, and any other field a page posts"
            );
        }
        Some(fields) => {
            let _ = writeln!(out, "  fields           declared:");
            let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
            for f in fields {
                let mut notes = vec![if f.required { "required" } else { "optional" }.to_string()];
                if f.verify {
                    notes.push("verified".into());
                }
                if !f.options.is_empty() {
                    notes.push(format!(
                        "options: {}",
                        f.options
                            .iter()
                            .map(|o| safe(o).into_owned())
                            .collect::<Vec<_>>()
                            .join(" | ")
                    ));
                }
                let _ = writeln!(
                    out,
                    "    {:<width$}  {:<10}  {}  \"{}\"",
                    f.name,
                    f.kind.as_str(),
                    notes.join(", "),
                    safe(&f.label)
                );
            }
        }
    }
    let inbox = if form.staff_inbox.is_empty() {
        "(none: released messages are not mailed)".to_string()
    } else {
        form.inboxes()
    };
    let _ = writeln!(out, "  staff_inbox      {}", safe(&inbox));
    let origins = if form.allowed_origins.is_empty() {
        "(none: only formgate's own pages post it)".to_string()
    } else {
        form.allowed_origins.join(", ")
    };
    let _ = writeln!(out, "  allowed_origins  {}", safe(&origins));
    let thanks = form
        .thank_you_url
        .clone()
        .unwrap_or_else(|| "(formgate's own page)".to_string());
    let _ = writeln!(out, "  thank_you_url    {}", safe(&thanks));
    if form.webhooks.is_empty() {
        let _ = writeln!(out, "  webhooks         (none)");
    }
    for (i, w) in form.webhooks.iter().enumerate() {
        let events: Vec<&str> = w.events.iter().map(|e| e.as_str()).collect();
        let format = match w.format {
            crate::webhook::Format::Standard => "standard",
            crate::webhook::Format::Slack => "slack",
        };
        let _ = writeln!(
            out,
            "  {:<16} {}  ({format}; {}; {} secret{})",
            if i == 0 { "webhooks" } else { "" },
            safe(&crate::webhook::shown_url(&w.url)),
            events.join(", "),
            w.secrets.len(),
            if w.secrets.len() == 1 { "" } else { "s" }
        );
    }
    if form.confirmation_mail {
        let _ = writeln!(out, "  confirmation     the visitor gets a copy once they confirm");
    }
}

/// `formgate forms snippet SLUG`: the HTML on stdout, advice on stderr. Exit 2 for an unknown slug.
pub fn snippet(config: &Config, slug: &str) -> ExitCode {
    if let Err(code) = known(config, Some(slug), &mut std::io::stderr()) {
        return ExitCode::from(code);
    }
    let forms = config.forms();
    let Some(form) = forms.iter().find(|f| f.slug == slug) else {
        return ExitCode::from(2);
    };
    print!("{}", html(form, &config.link_base()));
    if form.allowed_origins.is_empty() {
        eprintln!(
            "formgate: note: form `{slug}` sets no allowed_origins: add your site's origin (e.g. https://www.example.org) to [forms.{slug}] allowed_origins, or posts from your page are refused"
        );
    }
    if form.require_form_token {
        eprintln!(
            "formgate: note: form `{slug}` has require_form_token = true: a form on your own page has no form token, so its posts would be held as spam; turn it off for this form"
        );
    }
    ExitCode::SUCCESS
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Inline because the page is someone else's: formgate's stylesheet is not there.
const HIDDEN_STYLE: &str = "position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden";

/// The form as formgate's own page has it (same names, types and honeypot), without the page's
/// time field (a page that is not formgate's cannot have one).
pub fn html(form: &Form, base: &str) -> String {
    let e = escape;
    let action = format!("{base}/f/{}", form.slug);
    let mut out = String::new();
    let _ = writeln!(out, "<!-- formgate: {} ({}) -->", e(&form.title), e(&form.slug));
    let _ = writeln!(
        out,
        "<form method=\"post\" action=\"{}\" accept-charset=\"utf-8\">",
        e(&action)
    );
    for f in form.visible_fields() {
        field(&mut out, form, &f);
    }
    let hp = HONEYPOTS[0];
    let hp_id = format!("{}-{hp}", form.slug);
    let _ = writeln!(
        out,
        "  <div class=\"formgate-hp\" aria-hidden=\"true\" style=\"{HIDDEN_STYLE}\">"
    );
    let _ = writeln!(out, "    <label for=\"{}\">Leave this field empty</label>", e(&hp_id));
    let _ = writeln!(
        out,
        "    <input id=\"{}\" name=\"{hp}\" type=\"text\" value=\"\" tabindex=\"-1\" autocomplete=\"off\">",
        e(&hp_id)
    );
    let _ = writeln!(out, "  </div>");
    let _ = writeln!(out, "  <button type=\"submit\">Send</button>");
    let _ = writeln!(out, "</form>");
    out
}

/// The most characters the form takes in this field: a field that fills the name or subject
/// column is held to that column's limit too (as `accept` holds it).
fn max_length(f: &FieldSpec) -> usize {
    match f.core() {
        Some(Core::Name) => f.max_length().min(MAX_NAME),
        Some(Core::Subject) => f.max_length().min(MAX_SUBJECT),
        _ => f.max_length(),
    }
}

fn field(out: &mut String, form: &Form, f: &FieldSpec) {
    let e = escape;
    let id = e(&format!("{}-{}", form.slug, f.name));
    let name = e(&f.name);
    let label = e(&f.label);
    let required = if f.required { " required" } else { "" };
    let mark = if f.required { " (required)" } else { "" };
    let help = f
        .help
        .as_deref()
        .map(|h| format!("    <small id=\"{id}-help\">{}</small>\n", e(h)))
        .unwrap_or_default();
    let described = if f.help.is_some() {
        format!(" aria-describedby=\"{id}-help\"")
    } else {
        String::new()
    };
    match f.kind {
        FieldKind::Hidden => {
            let _ = writeln!(out, "  <input type=\"hidden\" name=\"{name}\" value=\"\">");
        }
        FieldKind::Checkboxes => {
            let _ = writeln!(out, "  <fieldset{described}>");
            let _ = writeln!(out, "    <legend>{label}{mark}</legend>");
            out.push_str(&help);
            for o in &f.options {
                let o = e(o);
                let _ = writeln!(
                    out,
                    "    <label><input type=\"checkbox\" name=\"{name}\" value=\"{o}\"> {o}</label>"
                );
            }
            let _ = writeln!(out, "  </fieldset>");
        }
        FieldKind::Checkbox => {
            let _ = writeln!(out, "  <p>");
            let _ = writeln!(
                out,
                "    <label><input id=\"{id}\" type=\"checkbox\" name=\"{name}\" value=\"on\"{required}{described}> {label}</label>"
            );
            out.push_str(&help);
            let _ = writeln!(out, "  </p>");
        }
        kind => {
            let _ = writeln!(out, "  <p>");
            let _ = writeln!(out, "    <label for=\"{id}\">{label}{mark}</label>");
            out.push_str(&help);
            match kind {
                FieldKind::Textarea => {
                    let _ = writeln!(
                        out,
                        "    <textarea id=\"{id}\" name=\"{name}\" rows=\"8\" maxlength=\"{}\"{required}{described}></textarea>",
                        max_length(f)
                    );
                }
                FieldKind::Select => {
                    let _ = writeln!(out, "    <select id=\"{id}\" name=\"{name}\"{required}{described}>");
                    let _ = writeln!(out, "      <option value=\"\">Choose…</option>");
                    for o in &f.options {
                        let _ = writeln!(out, "      <option>{}</option>", e(o));
                    }
                    let _ = writeln!(out, "    </select>");
                }
                _ => {
                    let mut attrs = String::new();
                    if !matches!(kind, FieldKind::Number | FieldKind::Date) {
                        let _ = write!(attrs, " maxlength=\"{}\"", max_length(f));
                    }
                    if let Some(min) = f.min {
                        let _ = write!(attrs, " min=\"{min}\"");
                    }
                    if let Some(max) = f.max {
                        let _ = write!(attrs, " max=\"{max}\"");
                    }
                    if kind == FieldKind::Email {
                        attrs.push_str(" autocomplete=\"email\" inputmode=\"email\"");
                    }
                    let _ = writeln!(
                        out,
                        "    <input id=\"{id}\" name=\"{name}\" type=\"{}\"{attrs}{required}{described}>",
                        kind.as_str()
                    );
                }
            }
            let _ = writeln!(out, "  </p>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_open_form_snippet_has_its_four_fields_and_the_honeypot() {
        let form = Form::open("contact", "Contact <us>", "S");
        let html = html(&form, "https://forms.example.org");
        assert!(
            html.contains(r#"action="https://forms.example.org/f/contact""#),
            "{html}"
        );
        for name in ["name", "email", "subject", "message", "website"] {
            assert!(html.contains(&format!("name=\"{name}\"")), "{name}: {html}");
        }
        assert!(html.contains("<textarea id=\"contact-message\""), "{html}");
        assert!(html.contains("type=\"email\""), "{html}");
        assert!(html.contains("Contact &lt;us&gt;"), "{html}");
        assert!(
            !html.contains("form_token"),
            "no time field off formgate's pages: {html}"
        );
    }
}
