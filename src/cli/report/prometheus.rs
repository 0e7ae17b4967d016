//! A small client of Prometheus's HTTP API (`/api/v1/query_range`, `/api/v1/query`) over plain
//! HTTP, bounded in time, with errors that name the server and the query.
//!
//! In: a base URL, PromQL, a range. Out: [`Series`] (the JSON parsed by [`parse`], which is
//! pure and tested without a server).

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::cost::showback::series::Series;

/// The longest a request may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus refuses range queries of more than 11,000 points per series; stay under.
const MAX_POINTS: f64 = 10_000.0;

/// What can go wrong asking Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The URL is not `http://host[:port][/prefix]`.
    #[error("prometheus {url}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection or no answer in time.
    #[error("prometheus {url}: no answer to {query:?}: {reason}")]
    Unreachable {
        /// The server.
        url: String,
        /// The PromQL.
        query: String,
        /// Why.
        reason: String,
    },
    /// An HTTP status other than 200, or a status other than `success`.
    #[error("prometheus {url}: query {query:?} failed: {reason}")]
    Failed {
        /// The server.
        url: String,
        /// The PromQL.
        query: String,
        /// Status and Prometheus's error.
        reason: String,
    },
    /// The answer is not Prometheus's JSON.
    #[error("prometheus {url}: query {query:?}: the answer is not Prometheus API JSON ({reason})")]
    Malformed {
        /// The server.
        url: String,
        /// The PromQL.
        query: String,
        /// What did not parse.
        reason: String,
    },
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    url: String,
    host: String,
    port: u16,
    prefix: String,
}

impl Prometheus {
    /// A client of the server at `url` (`http://host[:port][/prefix]`).
    pub fn new(url: &str) -> Result<Self, PrometheusError> {
        let bad = |reason: &str| PrometheusError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| bad(&format!("not a URL ({e}); expected http://host:port")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(bad(&format!(
                    "scheme {other:?} is not supported; expected http:// (use a port-forward or a sidecar for TLS)"
                )));
            }
            None => return Err(bad("no scheme; expected http://host:port")),
        }
        let host = uri.host().ok_or_else(|| bad("no host; expected http://host:port"))?;
        Ok(Prometheus {
            url: url.to_string(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: uri.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// `query` evaluated every `step` seconds from `start` to `end` (Unix seconds), in pieces
    /// small enough for Prometheus's point limit.
    pub async fn range(&self, query: &str, start: f64, end: f64, step: f64) -> Result<Vec<Series>, PrometheusError> {
        let mut merged: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        let mut from = start;
        while from <= end {
            let to = (from + step * (MAX_POINTS - 1.0)).min(end);
            let path = format!(
                "/api/v1/query_range?query={}&start={from}&end={to}&step={step}",
                encode(query)
            );
            for s in self.get(query, &path).await? {
                merged.entry(s.labels).or_default().extend(s.samples);
            }
            from = to + step;
        }
        Ok(merged
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples })
            .collect())
    }

    /// `query` evaluated at `at` (Unix seconds).
    pub async fn instant(&self, query: &str, at: f64) -> Result<Vec<Series>, PrometheusError> {
        let path = format!("/api/v1/query?query={}&time={at}", encode(query));
        self.get(query, &path).await
    }

    async fn get(&self, query: &str, path: &str) -> Result<Vec<Series>, PrometheusError> {
        let body = tokio::time::timeout(TIMEOUT, self.fetch(query, path))
            .await
            .map_err(|_| self.unreachable(query, format!("no answer within {} s", TIMEOUT.as_secs())))??;
        parse(&body).map_err(|e| match e {
            Answer::Failed(reason) => PrometheusError::Failed {
                url: self.url.clone(),
                query: query.to_string(),
                reason,
            },
            Answer::Malformed(reason) => PrometheusError::Malformed {
                url: self.url.clone(),
                query: query.to_string(),
                reason,
            },
        })
    }

    async fn fetch(&self, query: &str, path: &str) -> Result<Vec<u8>, PrometheusError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(query, format!("cannot connect: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(query, e.to_string()))?;
        tokio::spawn(connection);
        let request = hyper::Request::get(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.unreachable(query, e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(query, e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(query, e.to_string()))?
            .to_bytes()
            .to_vec();
        // Prometheus answers errors (400, 422, 503) with its JSON error body: let `parse` read it.
        if !status.is_success() && serde_json::from_slice::<Value>(&body).is_err() {
            let text = String::from_utf8_lossy(&body);
            return Err(PrometheusError::Failed {
                url: self.url.clone(),
                query: query.to_string(),
                reason: format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
            });
        }
        Ok(body)
    }

    fn unreachable(&self, query: &str, reason: String) -> PrometheusError {
        PrometheusError::Unreachable {
            url: self.url.clone(),
            query: query.to_string(),
            reason,
        }
    }
}

/// Why an answer holds no series.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Prometheus said the query failed.
    Failed(String),
    /// The body is not Prometheus API JSON.
    Malformed(String),
}

/// The series of a `/api/v1/query` or `/api/v1/query_range` answer.
pub fn parse(body: &[u8]) -> Result<Vec<Series>, Answer> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Answer::Malformed(e.to_string()))?;
    match value.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some(status) => {
            let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(Answer::Failed(format!(
                "status {status}: {}: {}",
                field("errorType"),
                field("error")
            )));
        }
        None => return Err(Answer::Malformed("no \"status\" field".into())),
    }
    let result = value
        .pointer("/data/result")
        .and_then(Value::as_array)
        .ok_or_else(|| Answer::Malformed("no data.result array".into()))?;
    result.iter().map(series).collect()
}

fn series(item: &Value) -> Result<Series, Answer> {
    let labels = item
        .get("metric")
        .and_then(Value::as_object)
        .ok_or_else(|| Answer::Malformed("a result without \"metric\"".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let points: Vec<&Value> = match (item.get("values"), item.get("value")) {
        (Some(Value::Array(values)), _) => values.iter().collect(),
        (_, Some(value)) => vec![value],
        _ => return Err(Answer::Malformed("a result without \"values\" or \"value\"".into())),
    };
    let samples = points.into_iter().map(sample).collect::<Result<_, _>>()?;
    Ok(Series { labels, samples })
}

/// `[1712345678.5, "0.25"]`.
fn sample(point: &Value) -> Result<(f64, f64), Answer> {
    let bad = || Answer::Malformed(format!("sample {point} is not [time, \"value\"]"));
    let t = point.get(0).and_then(Value::as_f64).ok_or_else(bad)?;
    let v = point
        .get(1)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(bad)?;
    Ok((t, v))
}

/// Percent-encode a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_instant_answers_parse() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"node":"n1"},"values":[[1700000000,"1.5"],[1700000001.5,"2"]]}]}}"#;
        let s = parse(body).unwrap();
        assert_eq!(s[0].label("node"), "n1");
        assert_eq!(s[0].samples, vec![(1_700_000_000.0, 1.5), (1_700_000_001.5, 2.0)]);
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"budget":"b"},"value":[1700000000,"7"]}]}}"#;
        assert_eq!(parse(body).unwrap()[0].last(), Some(7.0));
    }

    #[test]
    fn errors_and_garbage_are_told_apart() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse(body),
            Err(Answer::Failed("status error: bad_data: parse error at char 5".into()))
        );
        assert!(matches!(parse(b"<html>"), Err(Answer::Malformed(_))));
        let body = br#"{"status":"success","data":{"result":[{"metric":{},"values":[[1,"x"]]}]}}"#;
        assert!(matches!(parse(body), Err(Answer::Malformed(m)) if m.contains("is not [time")));
    }

    #[test]
    fn urls_are_checked() {
        let p = Prometheus::new("http://127.0.0.1:9090/prom/").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.prefix.as_str()),
            ("127.0.0.1", 9090, "/prom")
        );
        let e = Prometheus::new("https://prom:443").unwrap_err().to_string();
        assert!(e.contains("expected http://"), "{e}");
        let e = Prometheus::new("prom:9090").unwrap_err().to_string();
        assert!(e.starts_with("prometheus prom:9090: "), "{e}");
        assert_eq!(
            encode("sum by (a) (x{y=\"z\"})"),
            "sum%20by%20%28a%29%20%28x%7By%3D%22z%22%7D%29"
        );
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_named_in_the_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let p = Prometheus::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = p.instant("up", 0.0).await.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "prometheus http://127.0.0.1:{port}: no answer to \"up\": cannot connect"
            )),
            "{e}"
        );
    }
}
