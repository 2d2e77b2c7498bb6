//! `weir check`: is the cluster reachable, which version, are the CRDs installed and
//! Established, are the controllers running and Ready.

use std::io::Write;

use k8s_openapi::{
    api::apps::v1::Deployment,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::Api;

use crate::{
    client::Cluster,
    error::{Error, Result},
    kinds::ALL,
    output::{self, Palette},
    write_out,
};

/// The namespace the install manifests put the controllers in.
pub const CONTROLLERS_NAMESPACE: &str = "weir-system";

/// The controller Deployments `weir install` creates.
pub const CONTROLLERS: [&str; 3] = ["source-controller", "render-controller", "apply-controller"];

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Whether it passed.
    pub ok: bool,
    /// What was checked and what was found.
    pub text: String,
}

/// Runs `weir check`: prints one line per finding; fails (exit 1) when any check failed.
pub async fn run(cluster: &Cluster, out: &mut dyn Write) -> Result<()> {
    // An unreachable cluster is exit 4, not a finding.
    let version = cluster
        .client
        .apiserver_version()
        .await
        .map_err(|e| Error::kube(e, "version"))?;
    let mut findings = vec![Finding {
        ok: true,
        text: format!("cluster reachable: Kubernetes {}", version.git_version),
    }];
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    for kind in ALL {
        let name = format!("{}.{}", kind.plural, kind.group);
        let finding = match crds
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube(e, &name))?
        {
            None => Finding {
                ok: false,
                text: format!("CRD {name}: not installed (run weir install)"),
            },
            Some(crd) => {
                let established = crd
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                let served = crd
                    .spec
                    .versions
                    .iter()
                    .any(|v| v.name == kind.version && v.served);
                match (established, served) {
                    (true, true) => Finding {
                        ok: true,
                        text: format!("CRD {name}: established, serves {}", kind.version),
                    },
                    (false, _) => Finding {
                        ok: false,
                        text: format!("CRD {name}: not established yet"),
                    },
                    (true, false) => Finding {
                        ok: false,
                        text: format!(
                            "CRD {name}: does not serve {} (upgrade with weir install)",
                            kind.version
                        ),
                    },
                }
            }
        };
        findings.push(finding);
    }
    let deployments: Api<Deployment> =
        Api::namespaced(cluster.client.clone(), CONTROLLERS_NAMESPACE);
    for name in CONTROLLERS {
        let finding = match deployments
            .get_opt(name)
            .await
            .map_err(|e| Error::kube(e, name))?
        {
            None => Finding {
                ok: false,
                text: format!(
                    "{name}: not installed in namespace {CONTROLLERS_NAMESPACE} (run weir install)"
                ),
            },
            Some(d) => {
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let ready = d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0);
                Finding {
                    ok: ready >= want && want > 0,
                    text: format!("{name}: {ready}/{want} replicas ready"),
                }
            }
        };
        findings.push(finding);
    }
    let palette = Palette::new(output::colour_enabled());
    let text: String = findings
        .iter()
        .map(|f| {
            let mark = if f.ok {
                palette.green("✔")
            } else {
                palette.red("✗")
            };
            format!("{mark} {}\n", f.text)
        })
        .collect();
    write_out(out, &text)?;
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} check(s) failed")));
    }
    Ok(())
}
