//! Free-text search terms, the same for both backends' full-text indexes.

/// Words of a free-text search, each quoted so that user input is never parsed as query syntax.
/// Splitting on the same boundaries as the index's tokenizer keeps every quoted term a single token.
pub fn search_terms(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn search_terms_drop_query_syntax() {
        assert_eq!(
            search_terms("Authentication \"failed\" OR user-42*"),
            ["authentication", "failed", "or", "user", "42"]
        );
        assert!(search_terms("!!! ***").is_empty());
    }
}
