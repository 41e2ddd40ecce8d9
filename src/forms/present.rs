//! A stored message's own fields as people read them: in the form's order, with the form's labels.

use serde::Serialize;

use super::{FieldKind, Form};
use crate::domain::{Field, FieldValue};

/// One field for a page, a mail, the dashboard or `show --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShownField {
    pub name: String,
    pub label: String,
    pub value: FieldValue,
}

/// The fields beyond name, email, subject and message (those every view shows already): a
/// declared form's in its order (a field left empty is absent), then any the message has that
/// the form no longer declares, under their names; an open form's in the order they were posted.
pub fn shown_fields(form: &Form, fields: &[Field]) -> Vec<ShownField> {
    let mut shown = Vec::with_capacity(fields.len());
    if let Some(declared) = &form.fields {
        for spec in declared.iter().filter(|s| s.core().is_none()) {
            if let Some(f) = fields.iter().find(|f| f.name == spec.name) {
                shown.push(ShownField {
                    name: f.name.clone(),
                    label: spec.label.clone(),
                    value: f.value.clone(),
                });
            }
        }
    }
    for f in fields {
        let declared = form
            .fields
            .as_ref()
            .is_some_and(|d| d.iter().any(|s| s.name == f.name && s.core().is_none()));
        if !declared {
            shown.push(ShownField {
                name: f.name.clone(),
                label: f.name.clone(),
                value: f.value.clone(),
            });
        }
    }
    shown
}

/// The columns an export of this form has beyond the message's own: a declared form's fields in
/// order; None for an open form (its fields go in one JSON column).
pub fn export_columns(form: &Form) -> Option<Vec<(String, String)>> {
    form.fields.as_ref().map(|d| {
        d.iter()
            .filter(|s| s.core().is_none())
            .map(|s| (s.name.clone(), s.label.clone()))
            .collect()
    })
}

/// A value for one export cell (a checkbox as yes/no, a list joined).
pub fn cell(fields: &[Field], name: &str) -> String {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.display())
        .unwrap_or_default()
}

/// `GET /f/{form}/schema`: the field list for a site that builds its form in JavaScript.
pub fn schema(form: &Form, action: &str) -> serde_json::Value {
    serde_json::json!({
        "form": form.slug,
        "title": form.title,
        "action": action,
        "open": form.is_open(),
        "fields": form.visible_fields(),
        "honeypot": super::accept::HONEYPOTS[0],
    })
}

/// Whether a field's page input is a `<textarea>`, a `<select>`, a group of boxes or an `<input>`.
pub fn widget(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Textarea => "textarea",
        FieldKind::Select => "select",
        FieldKind::Checkboxes => "checkboxes",
        FieldKind::Checkbox => "checkbox",
        _ => "input",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::{FieldSpec, open_fields};

    #[test]
    fn declared_fields_come_in_form_order_then_the_ones_no_longer_declared() {
        let mut fields = open_fields();
        fields.push(FieldSpec {
            name: "budget".into(),
            label: "Budget".into(),
            kind: FieldKind::Select,
            options: vec!["a".into()],
            ..open_fields()[0].clone()
        });
        let form = Form {
            fields: Some(fields),
            ..Form::open("q", "Q", "S")
        };
        let stored = vec![
            Field::new("old", FieldValue::Text("kept".into())),
            Field::new("budget", FieldValue::Text("a".into())),
        ];
        let shown = shown_fields(&form, &stored);
        assert_eq!(
            shown
                .iter()
                .map(|s| (s.name.as_str(), s.label.as_str()))
                .collect::<Vec<_>>(),
            [("budget", "Budget"), ("old", "old")]
        );
    }
}
