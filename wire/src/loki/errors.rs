//! The 400 answers of Loki's distributor: how it words its validation errors, and how many
//! entries an answer says were refused.
//!
//! Loki (2.9 and later, `pkg/distributor/distributor.go`) validates every stream and entry of
//! a push, stores what passed and answers 400 with all the errors grouped by message
//! (`util.GroupedErrors`): `N errors like: <message>` per distinct message, joined by `; `,
//! or the message alone when there was exactly one error. An entry-level error (line too long,
//! timestamp too old or too new, structured metadata refused) stands for one entry; a
//! stream-level one (bad labels, too many label names, ...) for a whole stream, of a size the
//! answer does not give.

/// Phrases of the entry-level validation messages (`pkg/validation/validate.go`), lower case:
/// each such error refused exactly one entry.
const ENTRY_ERRORS: [&str; 6] = [
    "max entry size '",
    "has timestamp too old:",
    "has timestamp too new:",
    "has structured metadata too large:",
    "has too many structured metadata labels:",
    "includes structured metadata, but this feature is disallowed",
];

/// What goes between a group's count and its message.
const LIKE: &str = " errors like: ";

/// Loki's answer for `errors` (in the order they happened): each distinct message once, with
/// its count, in the order first seen; a single error alone.
pub fn grouped(errors: &[String]) -> String {
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for e in errors {
        match groups.iter_mut().find(|(m, _)| *m == e.as_str()) {
            Some((_, n)) => *n += 1,
            None => groups.push((e, 1)),
        }
    }
    let prefixed = groups.len() > 1 || groups.first().is_some_and(|(_, n)| *n > 1);
    let mut out = String::new();
    for (i, (message, n)) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        if prefixed {
            out.push_str(&format!("{n}{LIKE}"));
        }
        out.push_str(message);
    }
    out
}

/// The groups of a grouped answer: (count, message). An answer without counts is one error.
pub fn groups(text: &str) -> Vec<(u64, &str)> {
    let text = text.trim();
    // Where each "N errors like: " starts (at the start or after "; "), its N, where its
    // message starts.
    let mut marks: Vec<(usize, u64, usize)> = Vec::new();
    for (at, _) in text.match_indices(LIKE) {
        let before = &text[..at];
        let digits = before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == at || !(digits == 0 || before[..digits].ends_with("; ")) {
            continue;
        }
        if marks.is_empty() && digits != 0 {
            continue;
        }
        if let Ok(n) = before[digits..].parse() {
            marks.push((digits, n, at + LIKE.len()));
        }
    }
    if marks.is_empty() {
        return vec![(1, text)];
    }
    marks
        .iter()
        .enumerate()
        .map(|(i, &(_, n, from))| {
            let to = marks
                .get(i + 1)
                .map_or(text.len(), |&(next, _, _)| next - "; ".len());
            (n, &text[from..to])
        })
        .collect()
}

/// How many entries a Loki 400 says its validation refused, when every error in it is about
/// one entry; `None` when it is not such an answer, or names an error that refuses a stream
/// or is unknown (the caller cannot know how much was stored then, and must not claim it).
pub fn refused_entries(body: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(body);
    let mut total = 0u64;
    for (n, message) in groups(&text) {
        let message = message.to_ascii_lowercase();
        if !ENTRY_ERRORS.iter().any(|p| message.contains(p)) {
            return None;
        }
        total = total.saturating_add(n);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "max entry size '1024' bytes exceeded for stream '{app=\"a\"}' while adding an entry with length '2000' bytes";
    const OLD: &str = "entry for stream '{app=\"a\"}' has timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable timestamp is: 2026-11-27T00:00:00Z";

    #[test]
    fn grouped_as_loki_words_it() {
        assert_eq!(grouped(&[LONG.into()]), LONG);
        assert_eq!(
            grouped(&[LONG.into(), LONG.into()]),
            format!("2 errors like: {LONG}")
        );
        assert_eq!(
            grouped(&[LONG.into(), OLD.into(), LONG.into()]),
            format!("2 errors like: {LONG}; 1 errors like: {OLD}")
        );
        assert_eq!(grouped(&[]), "");
    }

    #[test]
    fn counts_entry_errors_and_gives_up_on_stream_errors() {
        assert_eq!(refused_entries(LONG.as_bytes()), Some(1));
        // Capitalised as Loki before 3.x wrote it.
        assert_eq!(
            refused_entries(b"Max entry size '5' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '7' bytes"),
            Some(1)
        );
        let three = grouped(&[LONG.into(), OLD.into(), LONG.into()]);
        assert_eq!(groups(&three), vec![(2, LONG), (1, OLD)]);
        assert_eq!(refused_entries(three.as_bytes()), Some(3));
        let with_labels = grouped(&[
            LONG.into(),
            "stream '{a=\"b\"}' has label value too long: 'xxxx'".into(),
        ]);
        assert_eq!(refused_entries(with_labels.as_bytes()), None);
        assert_eq!(refused_entries(b"bad request"), None);
        // A label value that looks like a group boundary splits a message into pieces of which
        // one names no entry error: counted refused whole, never fewer.
        let tricky = OLD.replace("app=\"a\"", "app=\"a; 3 errors like: x\"");
        let text = grouped(&[LONG.into(), tricky, LONG.into()]);
        assert_eq!(refused_entries(text.as_bytes()), None);
        assert_eq!(refused_entries(b""), None);
    }

    proptest::proptest! {
        #[test]
        fn groups_read_back_what_grouped_wrote(picks in proptest::collection::vec(0usize..3, 1..20)) {
            let messages = [LONG, OLD, "stream '{a=\"b\"}' has duplicate label name: 'a'"];
            let errors: Vec<String> = picks.iter().map(|&i| messages[i].to_string()).collect();
            let text = grouped(&errors);
            let back = groups(&text);
            proptest::prop_assert_eq!(back.iter().map(|(n, _)| *n).sum::<u64>(), errors.len() as u64);
            for (n, m) in back {
                let want = errors.iter().filter(|e| e.as_str() == m).count() as u64;
                proptest::prop_assert_eq!(n, want);
            }
        }
    }
}
