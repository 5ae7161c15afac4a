//! Internationalised host names in `hosts allow` / `hosts deny`.
//!
//! A peer's name reaches the daemon from DNS in ASCII, so a token written
//! with non-ASCII letters (`bücher.example`, or a fullwidth spelling) is
//! folded label by label to its IDNA A-label (`xn--bcher-kva.example`)
//! before it is matched, as upstream does when built with IDN support.
//! ASCII labels are kept exactly, wildcards and address masks included.
//! A folded label is used only if it is a bare A-label (`[a-z0-9-]`):
//! the IDNA mapping turns some characters into ASCII punctuation (U+FF0A
//! FULLWIDTH ASTERISK becomes `*`), and a token must never gain a wildcard
//! or a mask its author did not type. A token that cannot be folded is
//! kept as written, so it matches nothing rather than too much.

/// The token with its non-ASCII labels folded to A-labels, or `None` when
/// it is all ASCII or cannot be folded (then the caller keeps the token).
pub(crate) fn fold(token: &str) -> Option<String> {
    if token.is_ascii() {
        return None;
    }
    let mut labels = Vec::new();
    for label in token.split('.') {
        if label.is_ascii() {
            labels.push(label.to_string());
            continue;
        }
        let folded = idna::domain_to_ascii(label).ok()?;
        if !is_a_label(&folded) {
            return None;
        }
        labels.push(folded);
    }
    Some(labels.join("."))
}

/// Whether `label` holds nothing but the `[a-z0-9-]` of an A-label.
fn is_a_label(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_labels_fold_to_a_labels() {
        assert_eq!(
            fold("\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}").as_deref(),
            Some("local"),
            "fullwidth"
        );
        assert_eq!(
            fold("\u{ff2c}\u{ff4f}\u{ff23}\u{ff21}\u{ff2c}.host").as_deref(),
            Some("local.host"),
            "case folds"
        );
        assert_eq!(fold("bücher.example").as_deref(), Some("xn--bcher-kva.example"));
        assert_eq!(fold("čičku.example"), fold("c\u{30c}ic\u{30c}ku.example"), "NFC first");
        assert_eq!(fold("čičku.example").as_deref(), Some("xn--iku-eqab.example"));
    }

    #[test]
    fn ascii_and_unfoldable_tokens_are_kept() {
        assert_eq!(fold("*.Example.COM"), None, "ASCII, wildcards included, stays as typed");
        assert_eq!(fold("127.0.0.0/8"), None);
        assert_eq!(fold("\u{ff0a}"), None, "a fullwidth star never becomes a wildcard");
        assert_eq!(fold("\u{ff0a}.example"), None);
        assert_eq!(fold("127.0.0.0\u{ff0f}8"), None, "nor a fullwidth slash a mask");
        assert_eq!(fold("\u{200b}.example"), None, "a label that maps to nothing");
        assert_eq!(fold("a\u{ff0e}b"), None, "a fullwidth dot does not split a label");
    }
}
