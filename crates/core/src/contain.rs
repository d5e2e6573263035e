//! Containing a backend's panic: some decoders (zune-jpeg 0.5.15) still panic on hostile input.
//! [`contain_panic`] turns such a panic into an error message, and while it runs
//! [`panic_is_contained`] is true on that thread, so a program's panic hook can stay quiet about a
//! panic that is about to become an ordinary error (and still report real bugs loudly).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static CONTAINING: Cell<u32> = const { Cell::new(0) };
}

/// A panic [`contain_panic`] caught: its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Panicked(pub String);

/// Runs `f`; a panic inside it comes back as `Err` with the panic's message. Use it only around
/// code whose state is thrown away with the closure, so nothing is left inconsistent.
pub fn contain_panic<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    CONTAINING.with(|c| c.set(c.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        Panicked(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string()),
        )
    })
}

/// Whether the current thread is inside [`contain_panic`]: a panic hook asks this.
pub fn panic_is_contained() -> bool {
    CONTAINING.with(|c| c.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_is_an_error_with_its_message() {
        assert!(!panic_is_contained());
        let seen_inside = contain_panic(panic_is_contained);
        assert_eq!(seen_inside, Ok(true));
        let err = contain_panic(|| -> u8 { panic!("bad {}", 7) }).unwrap_err();
        assert_eq!(err.to_string(), "bad 7");
        assert!(!panic_is_contained());
    }
}
