//! TLS for the export tests: certificates made by the `openssl` CLI in the test's own dir (a CA,
//! a server certificate for 127.0.0.1 signed by it, a second CA that signed nothing the server
//! has, a client CA and a client certificate), and [`TlsFront`], a TLS terminator in front of
//! the collector: `socat` (OpenSSL) listening with the server certificate and forwarding the
//! plain bytes to rotel, whose receivers have no TLS of their own. It is how a collector behind
//! a TLS-terminating load balancer or sidecar is reached; the agent's TLS meets OpenSSL, a TLS
//! implementation other than its own. Needs `openssl` and `socat` (scripts/install-deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The files of one test's certificates, all PEM.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct Pki {
    dir: tempfile::TempDir,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl Pki {
    /// Makes every certificate (a few hundred ms of RSA key generation).
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("coroner-pki-")
            .tempdir()
            .expect("creating the certificates' dir");
        let pki = Pki { dir };
        pki.make_ca("ca", "coroner test CA");
        pki.make_ca("other-ca", "a CA that signed nothing here");
        pki.make_ca("client-ca", "coroner test client CA");
        pki.make_leaf(
            "server",
            "ca",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        pki.make_leaf(
            "client",
            "client-ca",
            "coroner agent",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA that signed the server certificate.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A CA that did not.
    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.path("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }

    fn make_ca(&self, name: &str, subject: &str) {
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={subject}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &key,
                "-out",
                &pem,
            ],
        );
    }

    fn make_leaf(&self, name: &str, ca: &str, cn: &str, extensions: &str) {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            self.dir.path().join(&ext),
            format!("basicConstraints=CA:FALSE\n{extensions}"),
        )
        .expect("writing the extensions file");
        openssl(
            self.dir.path(),
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running openssl (apt-get install openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `socat` terminating TLS on a port of its own and forwarding to a plain-text port; killed on
/// drop.
#[allow(dead_code)] // each test binary uses a different part of the harness
pub struct TlsFront {
    port: u16,
    child: Child,
    log: PathBuf,
}

#[allow(dead_code)] // each test binary uses a different part of the harness
impl TlsFront {
    /// TLS with the server certificate on a free port, forwarding to 127.0.0.1:`to`. With
    /// `client_ca`, a client certificate signed by it is required (mutual TLS).
    pub async fn start(pki: &Pki, to: u16, client_ca: bool) -> TlsFront {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("binding 127.0.0.1:0")
            .port();
        let verify = if client_ca {
            format!("verify=1,cafile={}", pki.path("client-ca.pem").display())
        } else {
            "verify=0".to_string()
        };
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},{verify}",
            pki.path("server.pem").display(),
            pki.path("server.key").display(),
        );
        let log = pki.path(&format!("socat-{port}.log"));
        let out = std::fs::File::create(&log).expect("creating the socat log");
        let child = Command::new("socat")
            .args(["-d", "-d", &listen, &format!("TCP:127.0.0.1:{to}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("running socat (apt-get install socat): {e}"));
        let front = TlsFront { port, child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "socat does not listen on {port}: {}",
                front.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        front
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What socat logged (its connections and their TLS errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
