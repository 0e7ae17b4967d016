//! A minimal HTTPS/1.1 client for the webhook's tests and latency benchmark: one kept-alive TLS
//! connection trusting one CA, `POST` with a JSON body, the status and body back.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// One connection to the webhook.
pub struct Probe {
    stream: BufReader<TlsStream<TcpStream>>,
    host: String,
}

impl Probe {
    /// Connect to `addr`, verifying the server's certificate for `host` against `ca`.
    pub async fn connect(
        addr: std::net::SocketAddr,
        host: &str,
        ca: CertificateDer<'static>,
    ) -> std::io::Result<Probe> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).map_err(std::io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
        let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
        Ok(Probe {
            stream: BufReader::new(tls),
            host: host.to_string(),
        })
    }

    /// `POST path` with `body`; the status code and the response body. Bounded by `limit`.
    pub async fn post(&mut self, path: &str, body: &[u8], limit: Duration) -> std::io::Result<(u16, Vec<u8>)> {
        tokio::time::timeout(limit, self.exchange(path, body))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"))?
    }

    async fn exchange(&mut self, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let writer = self.stream.get_mut();
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await?;
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {status_line:?}")))?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::other("connection closed in the headers"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(std::io::Error::other)?;
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer).await?;
        Ok((status, answer))
    }
}
