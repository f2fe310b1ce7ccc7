//! Svix-style pagination: `limit`, `iterator` (an id; a leading `-` pages backwards), `order`,
//! answered with `iterator`, `prevIterator` and `done`.

use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::models::ListResponse;
use vestnik_store::PageRequest;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 250;

pub struct Paging {
    pub request: PageRequest,
    backwards: bool,
}

pub fn paging(query: &QueryParams, default_ascending: bool) -> Result<Paging, ApiError> {
    let limit = match query.int("limit")? {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT as i64).contains(&limit) => limit as usize,
        Some(_) => {
            return Err(ApiError::query(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
    };
    let ascending = match query.get("order") {
        None => default_ascending,
        Some("ascending") => true,
        Some("descending") => false,
        Some(_) => {
            return Err(ApiError::query(
                "order",
                "order must be ascending or descending",
            ));
        }
    };
    let (cursor, backwards) = match query.get("iterator").filter(|i| !i.is_empty()) {
        None => (None, false),
        Some(iterator) => {
            let (cursor, backwards) = match iterator.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (iterator, false),
            };
            let valid = cursor.len() <= 300
                && !cursor.is_empty()
                && cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(ApiError::query(
                    "iterator",
                    "iterator is not one this server returned",
                ));
            }
            (Some(cursor.to_owned()), backwards)
        }
    };
    Ok(Paging {
        request: PageRequest {
            limit,
            cursor,
            ascending: ascending != backwards,
        },
        backwards,
    })
}

impl Paging {
    /// Builds the list response from up to `limit + 1` fetched items.
    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> ListResponse<T> {
        let more = items.len() > self.request.limit;
        items.truncate(self.request.limit);
        if self.backwards {
            items.reverse();
        }
        let iterator = items.last().map(&key);
        let prev_iterator = items.first().map(|item| format!("-{}", key(item)));
        ListResponse {
            done: if self.backwards { false } else { !more },
            iterator,
            prev_iterator,
            data: items,
        }
    }
}
