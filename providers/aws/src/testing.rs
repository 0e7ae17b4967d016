//! Test support: a `moto_server` on 127.0.0.1 (EC2 and SQS), SDK settings pointing at it, and
//! an interceptor that makes EC2 answer `CreateFleet` with a capacity error (moto never does).
//!
//! Used by this crate's tests and the controller's AWS scenarios; nothing here runs in
//! production.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;

/// The moto version CI installs (`pip install 'moto[server]==…'`).
pub const MOTO_VERSION: &str = "5.2.1";

/// A `moto_server` child process on a free 127.0.0.1 port, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `moto_server` binary: `$MOTO_SERVER`, else the first on `PATH`, else the pinned venv
/// under `~/.cache/purser` (installed there by [`install_moto`] when missing).
pub fn moto_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| Some(moto_venv()?.join("bin/moto_server")).filter(|p| p.is_file()))
}

/// The pinned venv the test setup installs moto into: `~/.cache/purser/moto-<version>`, the
/// same place `.ci/run` uses.
fn moto_venv() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(format!(".cache/purser/moto-{MOTO_VERSION}")))
}

/// Install `moto[server]` (pinned) with pip into the cache venv, once per test process; a
/// failed install is removed so that the next run starts afresh instead of using half of it.
pub fn install_moto() -> Result<PathBuf, String> {
    static INSTALLED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = installed.as_ref() {
        return Ok(path.clone());
    }
    let venv = moto_venv().ok_or("HOME is not set: nowhere to install moto")?;
    let binary = venv.join("bin/moto_server");
    if !binary.is_file() {
        let created = run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).and_then(|()| {
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "-q"])
                .arg(format!("moto[server]=={MOTO_VERSION}")))
        });
        if let Err(e) = created {
            let _ = std::fs::remove_dir_all(&venv);
            return Err(e);
        }
    }
    *installed = Some(binary.clone());
    Ok(binary)
}

/// Run a set-up command, its failure as a message naming it.
fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The port in Werkzeug's ` * Running on http://127.0.0.1:PORT` line.
fn listening_port(line: &str) -> Option<u16> {
    let address = line.split("Running on http://").nth(1)?;
    address.trim().rsplit(':').next()?.parse().ok()
}

impl Moto {
    /// Start `moto_server -H 127.0.0.1 -p 0` and wait (up to 60 s) for the port it says it
    /// listens on. The server binds the port itself: a port picked here and passed to it could
    /// be taken by another server in between (another test's API server), and the tests then
    /// talked to that one. Installs it with pip when it is missing;
    /// panics, saying how to install it, when that fails: tests must not skip.
    pub fn start() -> Moto {
        let binary = moto_binary().unwrap_or_else(|| {
            install_moto().unwrap_or_else(|e| {
                panic!(
                    "moto_server is not installed and pip could not install it ({e}): install \
                     it with pip install 'moto[server]=={MOTO_VERSION}' (.ci/run does)"
                )
            })
        });
        let mut child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("moto_server's standard error");
        let mut moto = Moto {
            child,
            url: String::new(),
        };
        let (found, port) = std::sync::mpsc::channel();
        // Werkzeug says ` * Running on http://127.0.0.1:PORT`; the rest (one line per request)
        // is drained so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(port) = listening_port(&line) {
                    let _ = found.send(port);
                    break;
                }
            }
            lines.for_each(drop);
        });
        let port = port
            .recv_timeout(Duration::from_secs(60))
            .expect("moto_server exited, or did not say within 60 s which port it listens on");
        moto.url = format!("http://127.0.0.1:{port}");
        moto
    }

    /// SDK settings for this server: static test credentials, us-east-1, no SDK retries.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        test_sdk_config(&self.url).await
    }
}

/// SDK settings for a test endpoint: static credentials, us-east-1, no SDK retries.
pub async fn test_sdk_config(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "purser-tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// Makes `CreateFleet` calls whose first override is a poisoned instance type fail with
/// `InsufficientInstanceCapacity` in the response's error set, as EC2 does; the request never
/// reaches moto (it is turned into a harmless `DescribeRegions`).
///
/// It also records every `CreateFleet` client token, can drop requests or lose responses
/// (a transport error for the caller), and answers a repeated client token with the first
/// answer to it without reaching moto, as EC2's idempotency does (moto ignores client tokens).
#[derive(Debug, Clone, Default)]
pub struct CapacityInjector {
    poisoned: Arc<Mutex<Vec<String>>>,
    pending: Arc<Mutex<Option<(String, String)>>>,
    injected: Arc<Mutex<usize>>,
    fleet: Arc<Mutex<FleetCalls>>,
}

/// What the injector knows of `CreateFleet` calls.
#[derive(Debug, Default)]
struct FleetCalls {
    /// Every client token sent, in order.
    tokens: Vec<String>,
    /// The first successful answer to each token (the response XML).
    answers: std::collections::HashMap<String, String>,
    /// The token of the call in flight, if it is a `CreateFleet`.
    current: Option<String>,
    /// An answer to replay for the call in flight.
    replay: Option<String>,
    /// Requests still to drop before they reach moto.
    drop_requests: usize,
    /// Responses still to lose after moto answered.
    lose_responses: usize,
    /// True when the call in flight is to end in a transport error.
    fail_current: bool,
}

impl CapacityInjector {
    /// Fail launches whose plan's instance type is `instance_type`.
    pub fn poison(&self, instance_type: &str) {
        self.poisoned.lock().expect("lock").push(instance_type.to_string());
    }

    /// How many capacity errors were injected.
    pub fn injected(&self) -> usize {
        *self.injected.lock().expect("lock")
    }

    /// The client tokens of every `CreateFleet` sent so far, in order.
    pub fn fleet_tokens(&self) -> Vec<String> {
        self.fleet.lock().expect("lock").tokens.clone()
    }

    /// Drop the next `n` `CreateFleet` requests before they reach moto (the caller sees a
    /// transport error; nothing launches).
    pub fn drop_fleet_requests(&self, n: usize) {
        self.fleet.lock().expect("lock").drop_requests = n;
    }

    /// Lose the answers of the next `n` `CreateFleet` calls after moto launched (the caller sees
    /// a transport error).
    pub fn lose_fleet_responses(&self, n: usize) {
        self.fleet.lock().expect("lock").lose_responses = n;
    }

    /// Note a `CreateFleet` request; true when it must not reach moto (dropped, or answered
    /// from the first answer to its token).
    fn fleet_request(&self, body: &str) -> bool {
        let token = form_param(body, "ClientToken").unwrap_or_default();
        let mut fleet = self.fleet.lock().expect("lock");
        fleet.tokens.push(token.clone());
        fleet.current = Some(token.clone());
        if fleet.drop_requests > 0 {
            fleet.drop_requests -= 1;
            fleet.fail_current = true;
            return true;
        }
        if let Some(answer) = fleet.answers.get(&token).cloned() {
            fleet.replay = Some(answer);
            return true;
        }
        false
    }

    /// Remember the first answer to the token in flight.
    fn fleet_answered(&self, body: Option<&[u8]>) {
        let mut fleet = self.fleet.lock().expect("lock");
        let (Some(token), Some(body)) = (fleet.current.clone(), body) else {
            return;
        };
        if fleet.fail_current {
            return;
        }
        let xml = String::from_utf8_lossy(body).to_string();
        if xml.contains("<CreateFleetResponse") {
            fleet.answers.entry(token).or_insert(xml);
        }
        if fleet.lose_responses > 0 {
            fleet.lose_responses -= 1;
            fleet.fail_current = true;
        }
    }

    /// True when the call in flight is to end in a transport error; forgets the call.
    fn fleet_finished(&self) -> bool {
        let mut fleet = self.fleet.lock().expect("lock");
        fleet.current = None;
        fleet.replay = None;
        std::mem::take(&mut fleet.fail_current)
    }

    fn first_override(body: &str) -> Option<(String, String)> {
        let param = |name: &str| form_param(body, &format!("LaunchTemplateConfigs.1.Overrides.1.{name}"));
        Some((param("InstanceType")?, param("AvailabilityZone").unwrap_or_default()))
    }
}

impl Intercept for CapacityInjector {
    fn name(&self) -> &'static str {
        "CapacityInjector"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        if !body.contains("Action=CreateFleet") {
            return Ok(());
        }
        let divert = self.fleet_request(&body);
        let poisoned = Self::first_override(&body)
            .filter(|(instance_type, _)| self.poisoned.lock().expect("lock").contains(instance_type));
        if !divert && poisoned.is_none() {
            return Ok(());
        }
        let harmless = "Action=DescribeRegions&Version=2016-11-15";
        *request.body_mut() = SdkBody::from(harmless);
        request
            .headers_mut()
            .insert("content-length", harmless.len().to_string());
        if !divert {
            *self.pending.lock().expect("lock") = poisoned;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_ec2::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.output_or_error().is_ok() {
            self.fleet_answered(context.response().body().bytes());
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut aws_sdk_ec2::config::interceptors::FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !self.fleet_finished() {
            return Ok(());
        }
        if let Some(outcome) = context.output_or_error_mut() {
            let lost = aws_smithy_runtime_api::client::result::ConnectorError::io(
                "injected: the connection dropped (CreateFleet)".into(),
            );
            *outcome = Err(aws_smithy_runtime_api::client::orchestrator::OrchestratorError::connector(lost));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let replay = self.fleet.lock().expect("lock").replay.take();
        if let Some(xml) = replay {
            *context.response_mut().body_mut() = SdkBody::from(xml);
            return Ok(());
        }
        let Some((instance_type, zone)) = self.pending.lock().expect("lock").take() else {
            return Ok(());
        };
        *self.injected.lock().expect("lock") += 1;
        let xml = format!(
            r#"<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>injected</requestId><fleetId>fleet-injected</fleetId><errorSet><item><launchTemplateAndOverrides><overrides><instanceType>{instance_type}</instanceType><availabilityZone>{zone}</availabilityZone></overrides></launchTemplateAndOverrides><errorCode>InsufficientInstanceCapacity</errorCode><errorMessage>We currently do not have sufficient {instance_type} capacity in the Availability Zone you requested ({zone}).</errorMessage></item></errorSet><fleetInstanceSet/></CreateFleetResponse>"#
        );
        *context.response_mut().body_mut() = SdkBody::from(xml);
        Ok(())
    }
}

/// The value of `name` in a form-encoded body (percent-decoding only `/`, as the tests need).
fn form_param(body: &str, name: &str) -> Option<String> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(|v| v.replace("%2F", "/"))
}

/// Clients for tests: EC2 (with `injector`) and SQS on `sdk`, Pricing on `pricing_url`.
pub fn clients(sdk: &aws_config::SdkConfig, injector: &CapacityInjector, pricing_url: Option<&str>) -> crate::Clients {
    let mut clients = crate::Clients::new(sdk, pricing_url);
    let ec2 = aws_sdk_ec2::config::Builder::from(sdk)
        .interceptor(injector.clone())
        .build();
    clients.ec2 = aws_sdk_ec2::Client::from_conf(ec2);
    clients
}

/// Tag the default subnets of us-east-1a and us-east-1b and the first security group with
/// `key=value` for discovery; returns an x86_64 image ID.
pub async fn prepare_vpc(ec2: &aws_sdk_ec2::Client, key: &str, value: &str) -> String {
    let tag = aws_sdk_ec2::types::Tag::builder().key(key).value(value).build();
    let subnets = ec2.describe_subnets().send().await.expect("subnets");
    for s in subnets.subnets() {
        if matches!(s.availability_zone(), Some("us-east-1a" | "us-east-1b")) {
            ec2.create_tags()
                .resources(s.subnet_id().expect("id"))
                .tags(tag.clone())
                .send()
                .await
                .expect("tag subnet");
        }
    }
    let groups = ec2.describe_security_groups().send().await.expect("groups");
    let group = groups
        .security_groups()
        .first()
        .and_then(|g| g.group_id())
        .expect("a group");
    ec2.create_tags()
        .resources(group)
        .tags(tag)
        .send()
        .await
        .expect("tag group");
    let images = ec2.describe_images().send().await.expect("images");
    images
        .images()
        .iter()
        .find(|i| i.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .and_then(|i| i.image_id())
        .expect("an x86_64 image")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_comes_from_werkzeugs_startup_line() {
        assert_eq!(listening_port(" * Running on http://127.0.0.1:35171"), Some(35171));
        assert_eq!(listening_port("Press CTRL+C to quit"), None);
        assert_eq!(listening_port("127.0.0.1 - - \"POST / HTTP/1.1\" 200 -"), None);
    }
}
