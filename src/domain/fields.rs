//! What a visitor typed beyond name, address, subject and message: a form's own fields (a phone
//! number, a budget drop-down, a consent box), kept with the message in the order they came.

use serde::{Deserialize, Serialize};

/// One field's value. A checkbox group (a name posted several times) is a list; a single
/// checkbox is yes or no.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Flag(bool),
    Text(String),
    List(Vec<String>),
}

impl FieldValue {
    /// The value as one line of text for people: lists joined with ", ", a checkbox as yes/no.
    pub fn display(&self) -> String {
        match self {
            FieldValue::Flag(true) => "yes".into(),
            FieldValue::Flag(false) => "no".into(),
            FieldValue::Text(t) => t.clone(),
            FieldValue::List(items) => items.join(", "),
        }
    }
}

/// A field as stored: its name on the form and its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
}

impl Field {
    pub fn new(name: impl Into<String>, value: FieldValue) -> Self {
        Field {
            name: name.into(),
            value,
        }
    }
}

/// How the fields are kept in the database: a JSON array of `[name, value]` pairs (compact, and a
/// text search over it meets the visitor's words, not repeated key names).
pub fn fields_to_json(fields: &[Field]) -> String {
    let pairs: Vec<(&str, &FieldValue)> = fields.iter().map(|f| (f.name.as_str(), &f.value)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

/// The stored JSON back into fields; the error says what is wrong with it.
pub fn fields_from_json(text: &str) -> Result<Vec<Field>, String> {
    let pairs: Vec<(String, FieldValue)> =
        serde_json::from_str(text).map_err(|e| format!("the stored fields are not readable: {e}"))?;
    Ok(pairs.into_iter().map(|(name, value)| Field { name, value }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_their_stored_form() {
        let fields = vec![
            Field::new("company", FieldValue::Text("Acme \"quoted\"".into())),
            Field::new("topics", FieldValue::List(vec!["Web".into(), "App".into()])),
            Field::new("consent", FieldValue::Flag(true)),
        ];
        let json = fields_to_json(&fields);
        assert_eq!(
            json,
            r#"[["company","Acme \"quoted\""],["topics",["Web","App"]],["consent",true]]"#
        );
        assert_eq!(fields_from_json(&json).unwrap(), fields);
        assert_eq!(fields_from_json("[]").unwrap(), vec![]);
        assert!(fields_from_json("{").is_err());
    }

    #[test]
    fn values_read_as_one_line() {
        assert_eq!(FieldValue::Flag(false).display(), "no");
        assert_eq!(FieldValue::List(vec!["a".into(), "b".into()]).display(), "a, b");
    }
}
