//! An HTTP object store on the test server, as an HTTP cache that accepts PUT is (nginx with
//! `dav_methods PUT DELETE`, bazel-remote): GET and HEAD answer what was PUT (else 404), PUT
//! stores its body (412 where `If-None-Match: *` finds an object, unless the store is told
//! to ignore that condition, as some servers do), DELETE removes. It may require one exact
//! `Authorization` header (else 401).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::support::server::{Reply, Request, TestServer};

type Objects = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// The store and its server.
pub struct HttpStore {
    /// The server, for its URL and its request log.
    pub server: TestServer,
    objects: Objects,
}

impl HttpStore {
    /// A store that honours `If-None-Match: *` on PUT when `honours_condition`, and answers
    /// only requests that carry `authorization` when one is given.
    pub fn start(honours_condition: bool, authorization: Option<&str>) -> HttpStore {
        let objects = Objects::default();
        let (store, required) = (objects.clone(), authorization.map(str::to_string));
        let server = TestServer::start(move |request| {
            if required.is_some() && request.header("authorization") != required.as_deref() {
                return Reply::status(401);
            }
            answer(&store, request, honours_condition)
        });
        HttpStore { server, objects }
    }

    /// Puts `bytes` at `path` (`/…`) directly.
    pub fn put(&self, path: &str, bytes: &[u8]) {
        lock(&self.objects).insert(path.to_string(), bytes.to_vec());
    }

    /// What is at `path`, if anything.
    pub fn get(&self, path: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(path).cloned()
    }

    /// The paths of every object held.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    /// The requests with `method` to `path`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Request> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }
}

fn answer(objects: &Objects, request: &Request, honours_condition: bool) -> Reply {
    let mut objects = lock(objects);
    let path = request.path.clone();
    match request.method.as_str() {
        "GET" | "HEAD" => match objects.get(&path) {
            Some(bytes) => Reply::ok(bytes.clone()),
            None => Reply::status(404),
        },
        "PUT" => {
            let exists = objects.contains_key(&path);
            if exists && honours_condition && request.header("if-none-match") == Some("*") {
                return Reply::status(412);
            }
            objects.insert(path, request.body.clone());
            Reply::status(if exists { 204 } else { 201 })
        }
        "DELETE" => match objects.remove(&path) {
            Some(_) => Reply::status(204),
            None => Reply::status(404),
        },
        _ => Reply::status(405),
    }
}

fn lock(objects: &Objects) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
    objects
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
