//! A post as it arrived, before any form's rules: every name with every value, in order. Both
//! encodings become this one shape, so a form checks one thing whichever way a page or a script
//! sent it.

use serde_json::Value as Json;

/// One name's value(s) as posted.
#[derive(Clone, Debug, PartialEq)]
pub enum PostedValue {
    /// Given once (form-encoded), or a JSON string or number.
    One(String),
    /// Given several times (a checkbox group), or a JSON array of strings.
    Many(Vec<String>),
    /// A JSON `true` / `false`.
    Flag(bool),
}

impl PostedValue {
    /// Each value as text (a flag as `on` or nothing, as a browser would have sent it).
    pub fn texts(&self) -> Vec<&str> {
        match self {
            PostedValue::One(s) => vec![s.as_str()],
            PostedValue::Many(v) => v.iter().map(String::as_str).collect(),
            PostedValue::Flag(true) => vec!["on"],
            PostedValue::Flag(false) => vec![],
        }
    }
}

/// Every field of a post, in the order first seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Posted {
    pub fields: Vec<(String, PostedValue)>,
}

impl Posted {
    /// `application/x-www-form-urlencoded`: a name given twice becomes a list. The caller has
    /// checked that every part is valid UTF-8.
    pub fn from_form(bytes: &[u8]) -> Posted {
        let mut posted = Posted::default();
        for (name, value) in form_urlencoded::parse(bytes) {
            posted.push(name.into_owned(), value.into_owned());
        }
        posted
    }

    /// A JSON object whose values are strings, numbers, booleans, null (absent) or lists of
    /// strings; anything else is refused with the field's name.
    pub fn from_json(bytes: &[u8]) -> Result<Posted, String> {
        let InOrder(pairs) =
            serde_json::from_slice(bytes).map_err(|e| format!("the JSON body could not be read: {e}"))?;
        let mut posted = Posted::default();
        for (name, value) in pairs {
            if posted.get(&name).is_some() {
                return Err(format!("field `{name}` is given twice in the JSON object"));
            }
            let value = match value {
                Json::Null => continue,
                Json::String(s) => PostedValue::One(s),
                Json::Number(n) => PostedValue::One(n.to_string()),
                Json::Bool(b) => PostedValue::Flag(b),
                Json::Array(items) => PostedValue::Many(
                    items
                        .into_iter()
                        .map(|i| match i {
                            Json::String(s) => Ok(s),
                            Json::Number(n) => Ok(n.to_string()),
                            _ => Err(format!("field `{name}`: a list may hold only strings and numbers")),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                Json::Object(_) => return Err(format!("field `{name}`: an object is not a field value")),
            };
            posted.fields.push((name, value));
        }
        Ok(posted)
    }

    fn push(&mut self, name: String, value: String) {
        // (a form-encoded name given twice is a list: a checkbox group)
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                let mut list = match std::mem::replace(existing, PostedValue::Many(Vec::new())) {
                    PostedValue::One(s) => vec![s],
                    PostedValue::Many(v) => v,
                    PostedValue::Flag(_) => Vec::new(),
                };
                list.push(value);
                *existing = PostedValue::Many(list);
            }
            None => self.fields.push((name, PostedValue::One(value))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&PostedValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A name's single value as text: None when absent, an error when it was given several times.
    pub fn one(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None | Some(PostedValue::Flag(false)) => Ok(None),
            Some(PostedValue::One(s)) => Ok(Some(s)),
            Some(PostedValue::Flag(true)) => Ok(Some("on")),
            Some(PostedValue::Many(_)) => Err("This field was sent more than once.".into()),
        }
    }
}

/// A JSON object's members in the order they were written (serde_json's own map sorts them).
struct InOrder(Vec<(String, Json)>);

impl<'de> serde::Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of field names and values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<InOrder, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Json>()? {
                    members.push(member);
                }
                Ok(InOrder(members))
            }
        }
        d.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_become_lists_in_first_seen_order() {
        let p = Posted::from_form(b"topics=Web&name=Ada&topics=App+%26+more");
        assert_eq!(
            p.fields,
            vec![
                (
                    "topics".into(),
                    PostedValue::Many(vec!["Web".into(), "App & more".into()])
                ),
                ("name".into(), PostedValue::One("Ada".into())),
            ]
        );
        assert!(p.one("topics").is_err());
        assert_eq!(p.one("name").unwrap(), Some("Ada"));
    }

    #[test]
    fn json_values_of_every_kind_and_what_is_refused() {
        let p = Posted::from_json(br#"{"age": 42, "ok": true, "t": ["a", 1], "gone": null}"#).unwrap();
        assert_eq!(p.get("age"), Some(&PostedValue::One("42".into())));
        assert_eq!(p.get("ok"), Some(&PostedValue::Flag(true)));
        assert_eq!(p.get("t"), Some(&PostedValue::Many(vec!["a".into(), "1".into()])));
        assert_eq!(p.get("gone"), None);
        assert!(Posted::from_json(br#"{"x": {"y": 1}}"#).unwrap_err().contains("`x`"));
        assert!(Posted::from_json(br#"[1]"#).is_err());
        assert!(Posted::from_json(br#"{"x": [[1]]}"#).unwrap_err().contains("`x`"));
        assert!(Posted::from_json(br#"{"x": 1, "x": 2}"#).unwrap_err().contains("twice"));
        let p = Posted::from_json(br#"{"zeta": "1", "alpha": "2"}"#).unwrap();
        assert_eq!(p.fields[0].0, "zeta", "kept in the order written");
    }
}
