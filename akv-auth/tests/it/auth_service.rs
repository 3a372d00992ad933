//! The auth-service client against an mTLS server written here (tokio-rustls + hyper), with
//! certificates from rcgen in a temporary directory laid out as the client cert Secret.

use std::net::SocketAddr;
use std::sync::Arc;

use akv_auth::auth_service::{
    ENV_INJECTOR_AUTH_SERVICE, ENV_INJECTOR_AUTH_SERVICE_SECRET,
    ENV_INJECTOR_AUTH_SERVICE_VALIDATION, ENV_INJECTOR_CLIENT_CERT_DIR, ENV_INJECTOR_POD_NAME,
    ENV_INJECTOR_POD_NAMESPACE,
};
use akv_auth::{
    AuthServiceClient, AuthServiceConfig, AuthServiceCredential, ClientCertState, Env, Error,
};
use azure_core::credentials::TokenCredential;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const HOST: &str = "akv2k8s-envinjector.akv2k8s.svc";
const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.e30.token-from-the-auth-service";

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "akv2k8s-ca");
    let ca_cert = ca_params.clone().self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec![HOST.to_owned()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "web-0");
    let client = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// Serves `/auth/apps/web-0` → 200 token, other pods → 403, over mTLS requiring a client
/// certificate from the CA.
async fn serve(pki: &Pki) -> SocketAddr {
    testkit::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca"))
        .expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .expect("verifier");
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.server_cert.as_bytes()).expect("cert")],
            PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).expect("key"),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let (status, body) = match (req.uri().path(), req.uri().query()) {
                            ("/auth/apps/web-0", None) => {
                                (200, format!(r#"{{"oauth_token":"{TOKEN}"}}"#))
                            }
                            _ => (403, String::new()),
                        };
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json; charset=UTF-8")
                                .body(Full::new(Bytes::from(body)))
                                .expect("response"),
                        )
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// The plain-HTTP validation endpoint: 201 (certificate reissued) for `akv2k8s-web`.
async fn serve_validation() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let ok = req.uri().path() == "/auth/apps/web-0"
                            && req.uri().query() == Some("secret=akv2k8s-web");
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(if ok { 201 } else { 403 })
                                .body(Full::new(Bytes::new()))
                                .expect("response"),
                        )
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn cert_dir(pki: &Pki) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem).expect("ca");
    std::fs::write(dir.path().join("tls.crt"), &pki.client_cert).expect("crt");
    std::fs::write(dir.path().join("tls.key"), &pki.client_key).expect("key");
    dir
}

fn env(dir: &std::path::Path, addr: SocketAddr, pod: &str) -> Env {
    env_with_validation(dir, addr, pod, format!("https://{HOST}:{}", addr.port()))
}

fn env_with_validation(
    dir: &std::path::Path,
    addr: SocketAddr,
    pod: &str,
    validation: String,
) -> Env {
    Env::from([
        (
            ENV_INJECTOR_CLIENT_CERT_DIR,
            dir.to_str().expect("utf-8").to_owned(),
        ),
        (ENV_INJECTOR_POD_NAMESPACE, "apps".to_owned()),
        (ENV_INJECTOR_POD_NAME, pod.to_owned()),
        (
            ENV_INJECTOR_AUTH_SERVICE,
            format!("https://{HOST}:{}", addr.port()),
        ),
        (ENV_INJECTOR_AUTH_SERVICE_VALIDATION, validation),
        (ENV_INJECTOR_AUTH_SERVICE_SECRET, "akv2k8s-web".to_owned()),
        ("AKV2K8S_RESOLVE", format!("{HOST}={addr}")),
    ])
}

#[tokio::test]
async fn the_launcher_gets_its_token_over_mtls_with_the_mounted_client_certificate() {
    let pki = pki();
    let addr = serve(&pki).await;
    let dir = cert_dir(&pki);
    let validation = serve_validation().await;
    let config = AuthServiceConfig::from_env(&env_with_validation(
        dir.path(),
        addr,
        "web-0",
        format!("http://{validation}"),
    ))
    .expect("config");
    let client = AuthServiceClient::new(config).expect("client");
    let token = client.fetch_token().await.expect("token");
    assert_eq!(token.oauth_token.secret(), TOKEN);
    assert!(!format!("{token:?}").contains("token-from"));
    let cred = AuthServiceCredential::new(token);
    let t = cred
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .expect("static token");
    assert_eq!(t.token.secret(), TOKEN);
    assert!(!format!("{cred:?}").contains("token-from"));
    assert_eq!(
        client.validate().await.expect("validation"),
        ClientCertState::Reissued
    );
}

#[tokio::test]
async fn a_refused_pod_and_a_foreign_ca_are_reported_clearly() {
    let pki = pki();
    let addr = serve(&pki).await;
    let dir = cert_dir(&pki);
    let client = AuthServiceClient::new(
        AuthServiceConfig::from_env(&env(dir.path(), addr, "intruder")).expect("config"),
    )
    .expect("client");
    let err = client.fetch_token().await.expect_err("403");
    assert!(
        matches!(err, Error::AuthService { status: 403, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("azure-key-vault-env-injection"),
        "{err}"
    );

    // ca.crt from another CA: the server certificate is not trusted.
    let other = pki_other_ca(&pki);
    let other_dir = cert_dir(&other);
    let client = AuthServiceClient::new(
        AuthServiceConfig::from_env(&env(other_dir.path(), addr, "web-0")).expect("config"),
    )
    .expect("client");
    let err = client.fetch_token().await.expect_err("untrusted");
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(err.to_string().contains(HOST), "{err}");

    // A missing key file names the file.
    std::fs::remove_file(dir.path().join("tls.key")).expect("rm");
    let err = AuthServiceClient::new(
        AuthServiceConfig::from_env(&env(dir.path(), addr, "web-0")).expect("config"),
    )
    .expect_err("no key");
    assert!(err.to_string().contains("tls.key"), "{err}");
}

fn pki_other_ca(orig: &Pki) -> Pki {
    let fresh = pki();
    Pki {
        ca_pem: fresh.ca_pem,
        server_cert: String::new(),
        server_key: String::new(),
        client_cert: orig.client_cert.clone(),
        client_key: orig.client_key.clone(),
    }
}
