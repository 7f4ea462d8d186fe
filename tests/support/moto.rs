//! A moto server (AWS emulator) on a free loopback port, one per test,
//! killed by its PID when the test ends. slipway reaches it the way a user
//! points any AWS SDK elsewhere: AWS_ENDPOINT_URL and dummy credentials.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";
const INSTALL: &str = "pip install 'moto[server]==5.2.1'";

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// GET a path on the server; the status code, or None when it does not answer.
pub fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1)?.parse().ok()
}

impl Moto {
    /// Start a fresh moto server; panics with the install command when moto is missing.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// `start` with extra environment for the server (e.g. moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which turns IAM authorization on).
    #[allow(dead_code)]
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        // Once per test process: importing moto costs about a CPU second,
        // and the tests start some fifty servers.
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let installed = *INSTALLED.get_or_init(|| {
            Command::new("python3")
                .args(["-c", "import moto.server"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(
            installed,
            "the moto AWS emulator is not installed; install it with: {INSTALL}"
        );
        let port = free_port();
        let log = std::env::temp_dir().join(format!("slipway-moto-{port}.log"));
        let out = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new("python3")
            // moto's server with the AWS behaviours it lacks patched in (see the script).
            .arg(crate::support::repo().join("tests/support/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // Certificates stay PENDING_VALIDATION this long (moto's default is 60 s).
            .env("MOTO_ACM_VALIDATION_WAIT", "2")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto ({e}); install it with: {INSTALL}"));
        let mut m = Moto {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        while http(port, "GET", "/moto-api/") != Some(200) {
            if let Ok(Some(status)) = m.child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("moto exited ({status}) before answering; install it with: {INSTALL}\n{text}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "moto did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// The environment that points slipway (or any AWS SDK) at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/slipway-test-aws-config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/slipway-test-aws-credentials",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An SDK config for tests that change things behind slipway's back.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }

    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk_config().await)
    }

    /// What a team has before it points `stacks/blog` at an account: the
    /// `example.com` hosted zone its certificate validates through, and the
    /// IAM role its CI runs as (the stack maps it with an access entry, and
    /// EKS takes only principals that exist).
    pub fn blog_prerequisites(&self) {
        self.hosted_zone("example.com");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/gitlab.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
            self.iam()
                .await
                .create_role()
                .role_name("gitlab-ci-deployer")
                .assume_role_policy_document(trust)
                .send()
                .await
                .expect("CreateRole");
        });
    }

    /// An IAM user with `policy` as its only (inline) policy; its access key
    /// ID and secret, for runs made as that user once `enforce_iam` is on.
    pub fn user_with_policy(&self, name: &str, policy: &str) -> (String, String) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let iam = self.iam().await;
            iam.create_user().user_name(name).send().await.expect("CreateUser");
            iam.put_user_policy()
                .user_name(name)
                .policy_name(format!("{name}-policy"))
                .policy_document(policy)
                .send()
                .await
                .expect("PutUserPolicy");
            let key = iam
                .create_access_key()
                .user_name(name)
                .send()
                .await
                .expect("CreateAccessKey");
            let key = key.access_key().expect("access key");
            (key.access_key_id().to_string(), key.secret_access_key().to_string())
        })
    }

    /// Turn moto's IAM authorization on from now: every call must be signed
    /// by a user's key and allowed by its policies (moto_server.py says how
    /// it judges a statement).
    pub fn enforce_iam(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("moto answers");
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
        )
        .expect("POST reset-auth");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("reset-auth answer");
        assert!(
            buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200"),
            "{buf}"
        );
    }

    /// An SDK config signing as the access key `key`.
    pub async fn sdk_config_as(&self, key: &(String, String)) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                &key.0, &key.1, None, None, "test",
            ))
            .load()
            .await
    }

    /// Make the public hosted zone a team has before a stack looks it up
    /// (`stacks/blog` validates its certificate through `example.com`).
    /// Returns the zone ID.
    /// An ACM certificate requested for `domain` in us-west-2 (not by
    /// slipway); its ARN.
    pub fn certificate(&self, domain: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let conf = self
                .sdk_config()
                .await
                .into_builder()
                .region(aws_config::Region::new("us-west-2"))
                .build();
            aws_sdk_acm::Client::new(&conf)
                .request_certificate()
                .domain_name(domain)
                .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
                .send()
                .await
                .expect("RequestCertificate")
                .certificate_arn()
                .expect("arn")
                .to_string()
        })
    }

    pub fn hosted_zone(&self, name: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let r53 = aws_sdk_route53::Client::new(&self.sdk_config().await);
            let z = r53
                .create_hosted_zone()
                .name(name)
                .caller_reference(format!("test-{name}"))
                .send()
                .await
                .expect("CreateHostedZone");
            z.hosted_zone()
                .expect("zone")
                .id()
                .trim_start_matches("/hostedzone/")
                .to_string()
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
