//! Sends the credential chain's requests to the endpoints the user configured: reqsign
//! addresses STS at its AWS host name, so a request for `sts.*.amazonaws.com` goes to the
//! configured STS endpoint instead (`AWS_ENDPOINT_URL_STS`, a profile's `services` or
//! `endpoint_url`), with the path and query it was signed with.

use bytes::Bytes;
use opendal::HttpTransporter;

/// An HTTP sender that rewrites requests for AWS STS to `sts`, when one is configured.
#[derive(Clone, Debug)]
pub(crate) struct Routed {
    pub(crate) inner: HttpTransporter,
    /// The STS endpoint (`scheme://host[:port][/base]`), if not AWS's own.
    pub(crate) sts: Option<String>,
}

/// Whether `host` is an AWS STS host name (global or regional, any partition).
fn is_sts(host: &str) -> bool {
    host.starts_with("sts.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

impl reqsign_core::HttpSend for Routed {
    async fn http_send(
        &self,
        mut req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        if let Some(base) = &self.sts
            && req.uri().host().is_some_and(is_sts)
        {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let target = format!("{}{path}", base.trim_end_matches('/'));
            *req.uri_mut() = target.parse().map_err(|_| {
                reqsign_core::Error::config_invalid(format!("bad STS endpoint {base:?}"))
            })?;
            // The signature covers the AWS host name; an STS stand-in checks it against
            // the Host header, so the header names the host that was signed.
        }
        reqsign_core::HttpSend::http_send(&self.inner, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::is_sts;

    #[test]
    fn sts_hosts() {
        assert!(is_sts("sts.amazonaws.com"));
        assert!(is_sts("sts.eu-west-1.amazonaws.com"));
        assert!(is_sts("sts.cn-north-1.amazonaws.com.cn"));
        assert!(!is_sts("s3.amazonaws.com"));
        assert!(!is_sts("sts.example.com"));
    }
}
