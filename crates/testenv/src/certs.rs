//! Certificates and keys for one control plane, written as PEM files.

use std::{fs, path::Path};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Result, io};

/// File names inside the control plane's directory.
pub(crate) const CA_CERT: &str = "ca.crt";
pub(crate) const SERVING_CERT: &str = "apiserver.crt";
pub(crate) const SERVING_KEY: &str = "apiserver.key";
pub(crate) const ADMIN_CERT: &str = "admin.crt";
pub(crate) const ADMIN_KEY: &str = "admin.key";
pub(crate) const SA_KEY: &str = "sa.key";
pub(crate) const SA_PUB: &str = "sa.pub";

/// Writes a fresh CA, an apiserver serving certificate for loopback, an admin client certificate
/// in `system:masters`, and a service-account signing key into `dir`.
pub(crate) fn generate(dir: &Path) -> Result<()> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "weir-testenv-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let serving_key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(vec![
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        "kubernetes.default.svc.cluster.local".to_owned(),
        "10.0.0.1".to_owned(),
    ])?;
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving.signed_by(&serving_key, &issuer)?;

    let admin_key = KeyPair::generate()?;
    let mut admin = CertificateParams::new(Vec::<String>::new())?;
    admin
        .distinguished_name
        .push(DnType::CommonName, "weir-admin");
    admin
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let admin_cert = admin.signed_by(&admin_key, &issuer)?;

    let sa_key = KeyPair::generate()?;

    for (name, pem) in [
        (CA_CERT, ca_cert.pem()),
        (SERVING_CERT, serving_cert.pem()),
        (SERVING_KEY, serving_key.serialize_pem()),
        (ADMIN_CERT, admin_cert.pem()),
        (ADMIN_KEY, admin_key.serialize_pem()),
        (SA_KEY, sa_key.serialize_pem()),
        (SA_PUB, sa_key.public_key_pem()),
    ] {
        let path = dir.join(name);
        fs::write(&path, pem).map_err(io("writing", &path))?;
    }
    Ok(())
}
