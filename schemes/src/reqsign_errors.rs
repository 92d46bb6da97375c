//! reqsign's errors in plain words: its message and the innermost cause (e.g. "connection
//! refused"), which its `Display` leaves out.

/// `err`'s message and its innermost cause.
pub(crate) fn describe(err: &reqsign_core::Error) -> String {
    let mut innermost = None;
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    match innermost {
        Some(inner) => format!("{err}: {inner}"),
        None => err.to_string(),
    }
}
