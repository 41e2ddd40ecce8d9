//! The dashboard's search: how `list` matches a moderator's text on each engine, and the one
//! `list` query both backends run.

use super::records::ListQuery;

/// `%`, `_` and the escape character `\` match literally in a LIKE pattern built from user text
/// (backslash is the escape character on both backends: SQLite is told so with `ESCAPE`,
/// PostgreSQL uses it by default).
fn like_pattern(needle: &str) -> String {
    let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// A GLOB pattern for `needle` anywhere, in any letter case. SQLite's LIKE folds ASCII letters
/// only (without ICU), so a moderator's "élodie" would miss "Élodie"; GLOB is case-sensitive but
/// understands UTF-8 character classes, so each letter becomes the class of its cases (`[éÉ]`).
/// GLOB's own wildcards (`*`, `?`, `[`) in the needle are classes of one, hence literal.
fn glob_anycase_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() * 4 + 2);
    pattern.push('*');
    for c in needle.chars() {
        let mut forms = vec![c];
        // Only one-to-one case mappings: ß → SS has no single-character form.
        for other in [single(c.to_lowercase()), single(c.to_uppercase())]
            .into_iter()
            .flatten()
        {
            if !forms.contains(&other) {
                forms.push(other);
            }
        }
        if forms.len() > 1 || matches!(c, '*' | '?' | '[') {
            pattern.push('[');
            pattern.extend(forms);
            pattern.push(']');
        } else {
            pattern.push(c);
        }
    }
    pattern.push('*');
    pattern
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// The longest run of ASCII characters in `needle`.
fn longest_ascii_run(needle: &str) -> &str {
    needle
        .split(|c: char| !c.is_ascii())
        .max_by_key(|run| run.len())
        .unwrap_or("")
}

/// How `list` matches its search text, per engine.
#[derive(Clone, Copy)]
pub(super) enum TextMatch {
    /// PostgreSQL: `ILIKE`, which folds case by the database's locale.
    Ilike,
    /// SQLite: `LIKE` for ASCII text (it folds ASCII letters, and fast); otherwise `GLOB` with a
    /// pattern of case classes (see `glob_anycase_pattern`), which is correct but ten times
    /// slower, so the text's longest ASCII run, if any, first narrows the rows with `LIKE`.
    SqliteAnyCase,
}

/// Appends "`column` matches `needle`" to `qb`.
fn push_text_match<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, matching: TextMatch, column: &str, needle: &str)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let like = |qb: &mut sqlx::QueryBuilder<'a, DB>, text: &str| {
        qb.push(column)
            .push(" LIKE ")
            .push_bind(like_pattern(text))
            .push(" ESCAPE '\\'");
    };
    match matching {
        TextMatch::Ilike => {
            qb.push(column).push(" ILIKE ").push_bind(like_pattern(needle));
        }
        TextMatch::SqliteAnyCase if needle.is_ascii() => like(qb, needle),
        TextMatch::SqliteAnyCase => {
            qb.push("(");
            let run = longest_ascii_run(needle);
            if run.len() >= 2 {
                like(qb, run);
                qb.push(" AND ");
            }
            qb.push(column).push(" GLOB ").push_bind(glob_anycase_pattern(needle));
            qb.push(")");
        }
    }
}

/// Builds the `list` query for either backend. The page is cut from `messages` alone first, with
/// only the conditions this query needs (so `messages_by_status` / `messages_by_time` serve the
/// ORDER BY and LIMIT without sorting the table); the page's mail is read apart (`Store::list`). One SQL text per shape: a generic `(? IS NULL OR …)` form keeps the planner off the
/// index, which at 100 000 messages cost ~200 ms a page instead of under a millisecond.
/// `matching` is the engine's case-insensitive match.
pub(super) fn list_query<'a, DB>(q: &'a ListQuery, matching: TextMatch) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(
        "SELECT m.id, m.status, m.form, m.name, m.email, m.subject, substr(m.body, 1, 200) AS preview, m.created_at,
                m.verified_at, m.released_at, m.deleted_at
         FROM (SELECT * FROM messages WHERE TRUE",
    );
    if let Some(status) = q.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(form) = q.form.as_deref() {
        qb.push(" AND form = ").push_bind(form);
    }
    if let Some((at, id)) = q.after {
        // Spelled out rather than a row value: both planners turn this into an index range.
        qb.push(" AND (created_at < ").push_bind(at);
        qb.push(" OR (created_at = ")
            .push_bind(at)
            .push(" AND id < ")
            .push_bind(id.0)
            .push("))");
    }
    if let Some(needle) = q.search.as_deref().filter(|s| !s.is_empty()) {
        qb.push(" AND (");
        for (i, column) in ["name", "email", "subject", "body", "fields"].iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            push_text_match(&mut qb, matching, column, needle);
        }
        qb.push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(q.limit.max(1));
    qb.push(") m ORDER BY m.created_at DESC, m.id DESC");
    qb
}

#[cfg(test)]
mod tests {
    use super::{glob_anycase_pattern, longest_ascii_run};

    #[test]
    fn glob_patterns_fold_case_per_letter_and_keep_wildcards_literal() {
        assert_eq!(glob_anycase_pattern("Él"), "*[Éé][lL]*");
        assert_eq!(glob_anycase_pattern("a*?[]1 "), "*[aA][*][?][[]]1 *");
        // ß has no one-character upper case; ẞ lowers to it.
        assert_eq!(glob_anycase_pattern("ß"), "*ß*");
        assert_eq!(glob_anycase_pattern("ẞ"), "*[ẞß]*");
    }

    #[test]
    fn the_longest_ascii_run_narrows_a_non_ascii_search() {
        assert_eq!(longest_ascii_run("Élodie Ünal"), "lodie ");
        assert_eq!(longest_ascii_run("Σωκράτης"), "");
    }
}
