//! Approved templates: an account that has any may send only texts that
//! fit one of them.

const VAR: &str = "{#var#}";
const VAR_MAX: usize = 30;

/// Whether `message` fits `template`: each `{#var#}` stands for 1 to 30
/// arbitrary characters, everything else must match literally.
pub fn matches_template(template: &str, message: &str) -> bool {
    let msg: Vec<char> = message.chars().collect();
    let pieces: Vec<Vec<char>> = template.split(VAR).map(|p| p.chars().collect()).collect();
    fn go(pieces: &[Vec<char>], msg: &[char]) -> bool {
        let (first, rest) = match pieces.split_first() {
            Some(x) => x,
            None => return msg.is_empty(),
        };
        if !msg.starts_with(first) {
            return false;
        }
        let msg = &msg[first.len()..];
        if rest.is_empty() {
            return msg.is_empty();
        }
        // A variable follows: try every length from 1 to 30.
        (1..=VAR_MAX.min(msg.len())).any(|n| go(rest, &msg[n..]))
    }
    go(&pieces, &msg)
}

/// True when the account has no templates or `message` fits one.
pub fn allowed(templates: &[String], message: &str) -> bool {
    templates.is_empty() || templates.iter().any(|t| matches_template(t, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_matching() {
        assert!(matches_template("Your OTP is {#var#}", "Your OTP is 1"));
        assert!(!matches_template("Your OTP is {#var#}", "Your OTP is "));
        assert!(matches_template("Your OTP is {#var#}", &format!("Your OTP is {}", "9".repeat(30))));
        assert!(!matches_template("Your OTP is {#var#}", &format!("Your OTP is {}", "9".repeat(31))));
        assert!(matches_template("{#var#} and {#var#}", "a and b and c"));
        assert!(matches_template("fixed", "fixed"));
        assert!(!matches_template("fixed", "fixed!"));
        assert!(matches_template("Dear {#var#}, due {#var#}.", "Dear Ann, due 5 USD."));
        assert!(!matches_template("Dear {#var#}, due {#var#}.", "Dear Ann due 5 USD."));
        assert!(allowed(&[], "anything"));
    }
}
