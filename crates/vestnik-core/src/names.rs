//! Validated names that travel through Vestnik: event type names, uids, channels, endpoint URLs.
//! Each is parsed once at the edge; the limits here are the documented API limits.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("may contain only letters, digits, '-', '_' and '.'")]
    BadCharacters,
    #[error("is not a valid URL")]
    BadUrl,
    #[error("must use http or https")]
    BadScheme,
    #[error("must name a host")]
    MissingHost,
}

/// Maximum length of an endpoint URL (Svix's limit).
pub const MAX_URL_LEN: usize = 65_536;
/// Maximum length of an event type name or a uid.
pub const MAX_NAME_LEN: usize = 256;
/// Maximum length of a channel name.
pub const MAX_CHANNEL_LEN: usize = 128;

fn check_token(text: &str, max: usize) -> Result<(), NameError> {
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.chars().count() > max {
        return Err(NameError::TooLong { max });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NameError::BadCharacters);
    }
    Ok(())
}

macro_rules! token_name {
    ($name:ident, $max:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, NameError> {
                check_token(text, $max)?;
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

token_name!(
    EventTypeName,
    MAX_NAME_LEN,
    "An event type such as `claim.status_changed`."
);
token_name!(
    Uid,
    MAX_NAME_LEN,
    "A caller-chosen alias of an application, endpoint or message (`eventId`)."
);
token_name!(
    Channel,
    MAX_CHANNEL_LEN,
    "A channel that narrows which endpoints receive a message."
);

/// An absolute http(s) URL with a host: the only kind of target an endpoint may have.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.len() > MAX_URL_LEN {
            return Err(NameError::TooLong { max: MAX_URL_LEN });
        }
        let url = url::Url::parse(text).map_err(|_| NameError::BadUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NameError::BadScheme);
        }
        if url.host().is_none() {
            return Err(NameError::MissingHost);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_svix_pattern() {
        assert!(EventTypeName::parse("claim.status_changed").is_ok());
        assert!(Uid::parse("clinic-42_A.b").is_ok());
        assert_eq!(EventTypeName::parse(""), Err(NameError::Empty));
        assert_eq!(EventTypeName::parse("a b"), Err(NameError::BadCharacters));
        assert_eq!(
            Channel::parse(&"c".repeat(129)),
            Err(NameError::TooLong { max: 128 })
        );
        assert!(Channel::parse(&"c".repeat(128)).is_ok());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(EndpointUrl::parse("https://clinic.example/hooks").is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/x").is_ok());
        assert_eq!(
            EndpointUrl::parse("ftp://x.example/"),
            Err(NameError::BadScheme)
        );
        assert_eq!(EndpointUrl::parse("not a url"), Err(NameError::BadUrl));
        assert_eq!(EndpointUrl::parse("/relative"), Err(NameError::BadUrl));
    }
}
