//! Running one job per item a few at a time (`--jobs`), each worker with a dispatcher of its
//! own (a dispatcher serves one transfer at a time); results come back in item order.

use std::cell::{Cell, RefCell};

use futures_util::future::join_all;
use ptex_schemes::Dispatcher;

use crate::session::Session;

/// `work` for every item, at most `session.jobs` at once, on the current thread.
pub async fn each<T, R>(
    session: &Session,
    items: &[T],
    work: impl AsyncFn(&mut Dispatcher, &T) -> R,
) -> Vec<R> {
    let next = Cell::new(0);
    let results: RefCell<Vec<Option<R>>> = RefCell::new(items.iter().map(|_| None).collect());
    let worker = async || {
        let mut dispatcher = session.dispatcher();
        loop {
            let index = next.get();
            let Some(item) = items.get(index) else {
                break;
            };
            next.set(index + 1);
            let result = work(&mut dispatcher, item).await;
            results.borrow_mut()[index] = Some(result);
        }
    };
    let workers = session.jobs.min(items.len()).max(1);
    join_all((0..workers).map(|_| worker())).await;
    results.into_inner().into_iter().flatten().collect()
}
