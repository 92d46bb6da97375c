//! Content-addressed caches (`caches`, `PTEX_CACHES`): looked in first, by the file's sha256,
//! with the same verification as any source; a miss moves on quietly. On a miss, a host
//! takes a lease next to a filling cache's object (a write that succeeds only where none
//! is), so one host of a fleet goes to the origin while the others wait on the cache for a
//! bounded time; after the bytes are on stdout, the holder fills the cache (only where no
//! object is; an HTTP cache by PUT) and gives the lease back. A store that does not refuse
//! a second conditional write gives no lease. Correctness never depends on the lease: every
//! byte read from a cache is verified, and a cache that serves wrong bytes is passed over.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ptex_config::{Candidate, Settings};
use ptex_schemes::{Dispatcher, FetchError, RequestOptions, Scheme, Source, Written};

use crate::fetch;
use crate::job::{Job, Limits};
use crate::report::Reporter;
use crate::spool::{Spool, safe_file_name};
use crate::verify::{Expected, Verified};

/// The first poll of a cache while another host fills it; later polls are further apart.
const FIRST_POLL: Duration = Duration::from_millis(200);
/// The longest gap between two polls of a cache being filled.
const LAST_POLL: Duration = Duration::from_secs(2);
/// The most of a lease object ever read.
const LEASE_LIMIT: usize = 256;

/// One cache of one file.
struct Cache {
    /// The file's object in the cache.
    source: Source,
    /// Whether ptex fills it on a miss.
    fill: bool,
    /// `caches[i]`, for messages.
    via: String,
}

/// The caches of one file (none unless its size and sha256 are known).
pub struct Caches {
    list: Vec<Cache>,
    /// How long to wait on a cache another host fills; zero: no lease.
    wait: Duration,
    /// The longest a fill may take.
    fill_timeout: Duration,
}

/// What looking in the caches gave.
pub enum Looked {
    /// A cache had the file: its verified bytes.
    Hit(Spool, Verified),
    /// No cache had it.
    Miss(Misses),
}

/// The caches that answered "not there" (to fill later), and the lease this host took.
pub struct Misses {
    missed: Vec<usize>,
    lease: Option<Source>,
}

impl Caches {
    /// The caches of file `name` with what it must be, in order, without those allow/block
    /// keep out; a template that makes no URL for this file is skipped with a warning.
    pub fn new(settings: &Settings, name: &str, expected: &Expected, report: &Reporter) -> Caches {
        let mut list = Vec::new();
        for (index, url, fill) in candidates(settings, name, expected) {
            let via = format!("caches[{index}]");
            if settings.file.routing.is_blocked(&url) {
                report.info(format_args!(
                    "{via} {url}: blocked by the config's allow/block"
                ));
                continue;
            }
            match Source::parse(&url) {
                Ok(source) => list.push(Cache { source, fill, via }),
                Err(e) => report.warn(format_args!("{name}: {via} is not used: {e}")),
            }
        }
        Caches {
            list,
            wait: settings.caches.wait,
            fill_timeout: settings.caches.fill_timeout,
        }
    }

    /// Looks for the file in each cache, in order; on a miss everywhere, takes the lease of
    /// the first filling cache, or waits (bounded) for the host that holds it to fill it.
    pub async fn look(
        &self,
        job: &Job,
        dispatcher: &mut Dispatcher,
        limits: &Limits,
        spool_dir: &Path,
        report: &Reporter,
    ) -> Looked {
        let mut missed = Vec::new();
        for (index, cache) in self.list.iter().enumerate() {
            match dispatcher.stat(&cache.source, &no_headers(cache)).await {
                Ok(_) => {
                    if let Some(hit) = self
                        .read(index, job, dispatcher, limits, spool_dir, report)
                        .await
                    {
                        return Looked::Hit(hit.0, hit.1);
                    }
                }
                // A miss, also behind a redirect (a cache's front door sends requests on).
                Err(e) if matches!(e.innermost(), FetchError::NotFound { .. }) => {
                    report.info(format_args!("{}: not in {}", job.name, cache.source));
                    missed.push(index);
                }
                Err(e) => report.warn(format_args!(
                    "{}: cache {} ({}) skipped: {e}",
                    job.name, cache.source, cache.via
                )),
            }
        }
        let filling = missed.iter().copied().find(|&i| self.list[i].fill);
        let lease = match filling {
            Some(index) if !self.wait.is_zero() => {
                match self
                    .coordinate(index, job, dispatcher, limits, spool_dir, report)
                    .await
                {
                    Coordinated::Filled(spool, verified) => return Looked::Hit(spool, verified),
                    Coordinated::Holder(lease) => Some(lease),
                    Coordinated::OnOurOwn => None,
                }
            }
            _ => None,
        };
        Looked::Miss(Misses { missed, lease })
    }

    /// Reads cache `index` through the verifier; a failure is one warning naming the cache.
    async fn read(
        &self,
        index: usize,
        job: &Job,
        dispatcher: &mut Dispatcher,
        limits: &Limits,
        spool_dir: &Path,
        report: &Reporter,
    ) -> Option<(Spool, Verified)> {
        let cache = &self.list[index];
        let one = Job {
            name: job.name.clone(),
            sources: vec![cache.source.clone()],
            expected: job.expected.clone(),
            options: no_headers(cache),
        };
        match fetch::fetch(&one, dispatcher, limits, spool_dir, report).await {
            Ok(hit) => {
                report.info(format_args!("{}: cache hit in {}", job.name, cache.source));
                Some(hit)
            }
            Err(e) => {
                report.warn(format_args!(
                    "{}: cache {} ({}) passed over: {e:#}",
                    job.name, cache.source, cache.via
                ));
                None
            }
        }
    }

    /// Takes the lease of cache `index`, or waits while another host holds a fresh one: until
    /// the cache has the file, or the lease runs out (then one waiter takes it over), but
    /// never longer than the wait in all.
    async fn coordinate(
        &self,
        index: usize,
        job: &Job,
        dispatcher: &mut Dispatcher,
        limits: &Limits,
        spool_dir: &Path,
        report: &Reporter,
    ) -> Coordinated {
        let cache = &self.list[index];
        let Some(lease) = lease_of(&cache.source) else {
            return Coordinated::OnOurOwn;
        };
        let give_up = tokio::time::Instant::now() + self.wait;
        let mut told = false;
        while tokio::time::Instant::now() < give_up {
            if let Some(decided) = self
                .take_lease(cache, &lease, job, dispatcher, report)
                .await
            {
                return decided;
            }
            let now = unix_now();
            // A lease that cannot be read counts as fresh for our own wait.
            let deadline = match read_lease(dispatcher, &lease).await.map(|l| l.0) {
                Some(at) if at <= now => {
                    // Its holder is gone or slow: clear it, then try to take it.
                    if dispatcher.delete(&lease).await.is_err() {
                        return Coordinated::OnOurOwn;
                    }
                    continue;
                }
                Some(at) => give_up.min(tokio::time::Instant::now() + secs(at - now)),
                None => give_up,
            };
            if !told {
                told = true;
                report.news(format_args!(
                    "{}: another host is fetching it into {} (lease {lease}); waiting up to \
                     {:.1} s (PTEX_CACHE_WAIT)",
                    job.name,
                    cache.source,
                    self.wait.as_secs_f64()
                ));
            }
            if Self::wait_for_fill(cache, deadline, dispatcher).await {
                let read = self
                    .read(index, job, dispatcher, limits, spool_dir, report)
                    .await;
                return match read {
                    Some((spool, verified)) => Coordinated::Filled(spool, verified),
                    None => Coordinated::OnOurOwn,
                };
            }
        }
        report.news(format_args!(
            "{}: {} was not filled in time; fetching it from its other sources",
            job.name, cache.source
        ));
        Coordinated::OnOurOwn
    }

    /// One try at writing the lease object `lease` of `cache`: what to do when it is decided
    /// (we hold it, or we go on without one), `None` while another host holds it.
    async fn take_lease(
        &self,
        cache: &Cache,
        lease: &Source,
        job: &Job,
        dispatcher: &mut Dispatcher,
        report: &Reporter,
    ) -> Option<Coordinated> {
        let until = unix_now() + self.wait.as_secs_f64();
        let token = format!("{until:.3} {}", holder_id());
        let body = format!("ptex lease until {token}\n");
        let mut written = std::io::Cursor::new(body.as_bytes());
        match dispatcher.put_new(lease, &mut written).await {
            // Read back: a store whose conditional write is a check, then a write (not one
            // atomic step) can let two writers through; the last one holds it. (If it cannot
            // be read back, ours is the one written.)
            Ok(Written::Written)
                if read_lease(dispatcher, lease)
                    .await
                    .is_none_or(|(_, found)| found == token) =>
            {
                if !honours_the_condition(dispatcher, lease, &body).await {
                    report.info(format_args!(
                        "{}: {} ({}) wrote over an object where it should have refused \
                         (If-None-Match: *, ifGenerationMatch=0): no lease, fetching without it",
                        job.name, cache.source, cache.via
                    ));
                    let _ = dispatcher.delete(lease).await;
                    return Some(Coordinated::OnOurOwn);
                }
                report.info(format_args!("{}: took the lease {lease}", job.name));
                Some(Coordinated::Holder(lease.clone()))
            }
            Ok(_) => None,
            Err(e) => {
                report.warn(format_args!(
                    "{}: cannot take the lease {lease} ({}): {e}; fetching without it",
                    job.name, cache.via
                ));
                Some(Coordinated::OnOurOwn)
            }
        }
    }

    /// Polls `cache`, backing off, until it has the file (`true`) or `deadline` passes.
    async fn wait_for_fill(
        cache: &Cache,
        deadline: tokio::time::Instant,
        dispatcher: &mut Dispatcher,
    ) -> bool {
        let mut poll = FIRST_POLL;
        loop {
            tokio::time::sleep(
                poll.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
            poll = (poll * 2).min(LAST_POLL);
            if dispatcher
                .stat(&cache.source, &no_headers(cache))
                .await
                .is_ok()
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// After the verified bytes in `bytes` were handed on: writes them to each filling cache
    /// that missed (only where no object is yet), then gives the lease back. Bounded by the
    /// fill timeout; a failure is one warning, never a failed fetch.
    pub async fn fill(
        &self,
        misses: Misses,
        name: &str,
        bytes: &mut File,
        dispatcher: &mut Dispatcher,
        report: &Reporter,
    ) {
        let work = async {
            for &index in &misses.missed {
                let cache = &self.list[index];
                if !cache.fill {
                    continue;
                }
                // Another host may have filled it meanwhile: asking is cheaper than an
                // upload the store then refuses.
                let written = if dispatcher
                    .stat(&cache.source, &no_headers(cache))
                    .await
                    .is_ok()
                {
                    Ok(Written::AlreadyThere)
                } else {
                    match rewind(bytes) {
                        Ok(()) => dispatcher.put_new(&cache.source, bytes).await,
                        Err(e) => Err(FetchError::Storage {
                            reason: format!("cannot read the verified bytes back: {e}"),
                        }),
                    }
                };
                match written {
                    Ok(Written::Written) => {
                        report.info(format_args!("{name}: filled {}", cache.source));
                    }
                    Ok(Written::AlreadyThere) => report.info(format_args!(
                        "{name}: {} was filled by another host meanwhile",
                        cache.source
                    )),
                    Err(e) => report.warn(format_args!(
                        "{name}: cannot fill cache {} ({}): {e}",
                        cache.source, cache.via
                    )),
                }
            }
        };
        if tokio::time::timeout(self.fill_timeout, work).await.is_err() {
            report.warn(format_args!(
                "{name}: filling the caches did not finish within {:.1} s (PTEX_FILL_TIMEOUT); \
                 left to another host",
                self.fill_timeout.as_secs_f64()
            ));
        }
        release(misses, dispatcher).await;
    }
}

/// Gives back the lease of `misses` if this host holds one (best effort: a lease left
/// behind runs out by itself).
pub async fn release(misses: Misses, dispatcher: &mut Dispatcher) {
    if let Some(lease) = misses.lease {
        let _ = dispatcher.delete(&lease).await;
    }
}

/// The `--dry-run` candidates of the caches of file `name`.
pub fn dry_run(settings: &Settings, name: &str, expected: &Expected) -> Vec<Candidate> {
    candidates(settings, name, expected)
        .map(|(index, url, fill)| Candidate {
            blocked: settings.file.routing.is_blocked(&url),
            via: match fill {
                true => format!("caches[{index}], filled on a miss"),
                false => format!("caches[{index}]"),
            },
            url,
        })
        .collect()
}

/// Each cache's index, URL for this file and fill flag; none unless size and sha256 are
/// known (a cache is keyed by them).
fn candidates<'a>(
    settings: &'a Settings,
    name: &'a str,
    expected: &'a Expected,
) -> impl Iterator<Item = (usize, String, bool)> + 'a {
    let key = expected.sha256.as_ref().zip(expected.size);
    let list = key.map(|_| settings.caches.list.as_slice()).unwrap_or(&[]);
    list.iter().enumerate().filter_map(move |(index, spec)| {
        let (sha256, size) = key?;
        // `{name}` must stay one path segment: a name with a separator or `..` (which a
        // `file://` path would turn back into directories) skips the template.
        if spec.template.contains("{name}") && safe_file_name(name).is_err() {
            return None;
        }
        Some((index, spec.url(&sha256.to_string(), size, name), spec.fill))
    })
}

enum Coordinated {
    /// Another host filled the cache while we waited.
    Filled(Spool, Verified),
    /// We hold the lease (this object): we fetch and fill.
    Holder(Source),
    /// No lease (it ran out, or the store cannot take one): we fetch, and fill if we can.
    OnOurOwn,
}

/// The lease object next to a cache object: the same URL, `.lease` appended to its path.
fn lease_of(object: &Source) -> Option<Source> {
    let mut url = object.url().clone();
    let path = format!("{}.lease", url.path());
    url.set_path(&path);
    Source::parse(url.as_str()).ok()
}

/// Whether the store of `lease`, which this host just wrote, refuses to write it again: a
/// store may ignore the condition and replace what is there (an HTTP server that does not
/// know `If-None-Match: *`, an S3-compatible store without conditional writes, the GCS
/// emulator with `ifGenerationMatch=0`), and a lease that anyone can take is none. One more
/// small request, on a miss only; a local file is linked into place, which never replaces.
async fn honours_the_condition(dispatcher: &mut Dispatcher, lease: &Source, body: &str) -> bool {
    if lease.scheme() == Scheme::File {
        return true;
    }
    let mut again = std::io::Cursor::new(body.as_bytes());
    matches!(
        dispatcher.put_new(lease, &mut again).await,
        Ok(Written::AlreadyThere)
    )
}

/// When the lease at `lease` runs out (seconds since the epoch), and the whole token of its
/// holder (that time and the holder's id), if it can be read.
async fn read_lease(dispatcher: &mut Dispatcher, lease: &Source) -> Option<(f64, String)> {
    let options = RequestOptions::new(Vec::new(), lease);
    let mut download = dispatcher
        .open(lease, &options, None, &mut |_| {})
        .await
        .ok()?;
    let mut body = Vec::new();
    while let Some(chunk) = download.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > LEASE_LIMIT {
            return None;
        }
    }
    let text = String::from_utf8(body).ok()?;
    let token = text.trim().strip_prefix("ptex lease until ")?;
    let at = token.split(' ').next()?.parse::<f64>().ok()?;
    at.is_finite().then(|| (at, token.to_string()))
}

/// This run among all hosts: its process id and a random number.
fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{}-{random:016x}", std::process::id())
}

/// No `-H` header goes to a cache: those belong to the URL the user gave them for.
fn no_headers(cache: &Cache) -> RequestOptions {
    RequestOptions::new(Vec::new(), &cache.source)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

fn rewind(file: &mut File) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Sha256Hex;

    #[test]
    fn caches_need_size_and_hash_and_a_plain_name_for_name_templates() {
        let env: std::collections::HashMap<String, String> = [
            ("HOME", "/nonexistent"),
            ("PTEX_CACHE_DIR", "/tmp/c"),
            (
                "PTEX_CACHES",
                "file:///c/{sha256}/{name} https://d/cas/{sha256}",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = Settings::load(&env, None).unwrap();
        let sha = Sha256Hex::digest(b"x");
        let complete = Expected {
            size: Some(1),
            sha256: Some(sha.clone()),
        };
        let urls = |name: &str, expected: &Expected| -> Vec<String> {
            dry_run(&settings, name, expected)
                .into_iter()
                .map(|c| c.url)
                .collect()
        };
        assert_eq!(
            urls("f.bin", &complete),
            [
                format!("file:///c/{sha}/f.bin"),
                format!("https://d/cas/{sha}")
            ]
        );
        assert_eq!(
            urls("../f.bin", &complete),
            [format!("https://d/cas/{sha}")]
        );
        let no_size = Expected {
            size: None,
            sha256: Some(sha),
        };
        assert!(urls("f.bin", &no_size).is_empty());
    }

    #[test]
    fn the_lease_sits_next_to_the_object() {
        let object = Source::parse("s3://cas/sha256/ab").unwrap();
        assert_eq!(
            lease_of(&object).unwrap().url().as_str(),
            "s3://cas/sha256/ab.lease"
        );
        let object = Source::parse("file:///mnt/cas/ab").unwrap();
        assert_eq!(
            lease_of(&object).unwrap().url().as_str(),
            "file:///mnt/cas/ab.lease"
        );
    }
}
