//! Incoming keywords: the first word of a received text decides which
//! account gets it, as playSMS's `recvsms_process` does with its default
//! keyword separator (a space).

/// Longest keyword an operator may register.
pub const MAX_KEYWORD_LEN: usize = 50;

/// Splits a received text into its keyword (first space-separated word,
/// upper-cased) and the message after it. Surrounding whitespace is
/// trimmed; a text without a space is all keyword.
pub fn split_keyword(text: &str) -> (String, &str) {
    let text = text.trim();
    match text.split_once(' ') {
        Some((first, rest)) => (keyword_key(first), rest.trim()),
        None => (keyword_key(text), ""),
    }
}

/// A keyword in the case it is stored and compared in (upper), so that
/// `vote`, `Vote` and `VOTE` are one keyword wherever one is looked up.
pub fn keyword_key(word: &str) -> String {
    word.trim().to_uppercase()
}

/// A keyword as stored: upper-case, non-empty, without whitespace, so that
/// [`split_keyword`] can produce it.
pub fn normalize_keyword(raw: &str) -> Option<String> {
    let k = keyword_key(raw);
    let ok = !k.is_empty() && k.chars().count() <= MAX_KEYWORD_LEN && !k.chars().any(char::is_whitespace);
    ok.then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_word_is_the_keyword_in_upper_case() {
        assert_eq!(split_keyword("IDOL I vote for #3"), ("IDOL".to_owned(), "I vote for #3"));
        assert_eq!(split_keyword("idol lowercase keyword"), ("IDOL".to_owned(), "lowercase keyword"));
        assert_eq!(split_keyword("  Idol   spaced  "), ("IDOL".to_owned(), "spaced"));
        assert_eq!(split_keyword("IDOL"), ("IDOL".to_owned(), ""));
        assert_eq!(split_keyword(""), (String::new(), ""));
        assert_eq!(split_keyword("über alles"), ("ÜBER".to_owned(), "alles"));
    }

    #[test]
    fn keywords_are_single_upper_case_words() {
        assert_eq!(normalize_keyword(" idol ").as_deref(), Some("IDOL"));
        assert_eq!(normalize_keyword("two words"), None);
        assert_eq!(normalize_keyword(""), None);
        assert_eq!(normalize_keyword(&"K".repeat(51)), None);
    }
}
