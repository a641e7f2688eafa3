//! Account inputs parsed once at the edge, so an invalid email, handle or password
//! cannot exist past the form that received it.

/// Why an account field was refused; the message is shown to the person typing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AccountFieldError {
    pub field: &'static str,
    pub message: &'static str,
}

fn refuse<T>(field: &'static str, message: &'static str) -> Result<T, AccountFieldError> {
    Err(AccountFieldError { field, message })
}

/// A lower-cased email address with one `@` and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, AccountFieldError> {
        let value = input.trim().to_lowercase();
        if value.is_empty() || value.len() > 254 {
            return refuse("email", "enter an email address of at most 254 characters");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return refuse("email", "an email address has an @");
        };
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@');
        if local.is_empty() || !valid_domain || value.chars().any(char::is_whitespace) {
            return refuse("email", "this does not look like an email address");
        }
        Ok(Email(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A public contributor name: 3–32 characters of `a-z`, `0-9`, `-` and `_`, lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub fn parse(input: &str) -> Result<Handle, AccountFieldError> {
        let value = input.trim().to_lowercase();
        if !(3..=32).contains(&value.len()) {
            return refuse("handle", "choose a name of 3 to 32 characters");
        }
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if !value.chars().all(allowed) {
            return refuse("handle", "use only letters, digits, '-' and '_'");
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return refuse("handle", "start with a letter or a digit");
        }
        Ok(Handle(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password long enough to resist guessing, short enough to hash cheaply.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;

    pub fn parse(input: &str) -> Result<Password, AccountFieldError> {
        let chars = input.chars().count();
        if chars < Self::MIN_CHARS {
            return refuse("password", "use at least 10 characters");
        }
        if input.len() > 512 {
            return refuse("password", "use at most 512 bytes");
        }
        Ok(Password(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Ada@Example.org ").map(|e| e.0),
            Ok("ada@example.org".into())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "a@b@c.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn handles_are_url_safe() {
        assert_eq!(
            Handle::parse("Ada_Lovelace").map(|h| h.0),
            Ok("ada_lovelace".into())
        );
        for bad in ["ab", "-ada", "ada lovelace", "ada/..", &"a".repeat(33)] {
            assert!(Handle::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough pass").is_ok());
        assert!(Password::parse(&"x".repeat(513)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("long enough pass")),
            "Ok(Password(…))"
        );
    }
}
