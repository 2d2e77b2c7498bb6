//! Resource identity: group/version/kind plus name and namespace, printed as kustomize does.

use std::fmt;

/// Group, version and kind of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Gvk {
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Parses `apiVersion` + `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether `self` (a selector, empty fields match anything) selects `other`.
    pub fn selects(&self, other: &Gvk) -> bool {
        (self.group.is_empty() || self.group == other.group)
            && (self.version.is_empty() || self.version == other.version)
            && (self.kind.is_empty() || self.kind == other.kind)
    }

    /// Whether objects of this kind live outside namespaces.
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped_kind(&self.group, &self.kind)
    }
}

/// The built-in cluster-scoped kinds kustomize knows (its OpenAPI data), by group and kind.
pub fn is_cluster_scoped_kind(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Namespace")
            | ("", "Node")
            | ("", "PersistentVolume")
            | ("", "ComponentStatus")
            | (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration"
            )
            | (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration"
            )
            | ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
            | (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding"
            )
            | ("admissionregistration.k8s.io", "MutatingAdmissionPolicy")
            | (
                "admissionregistration.k8s.io",
                "MutatingAdmissionPolicyBinding"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("apiregistration.k8s.io", "APIService")
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("certificates.k8s.io", "ClusterTrustBundle")
            | ("flowcontrol.apiserver.k8s.io", "FlowSchema")
            | ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration")
            | ("networking.k8s.io", "IngressClass")
            | ("networking.k8s.io", "IPAddress")
            | ("networking.k8s.io", "ServiceCIDR")
            | ("node.k8s.io", "RuntimeClass")
            | ("policy", "PodSecurityPolicy")
            | ("rbac.authorization.k8s.io", "ClusterRole")
            | ("rbac.authorization.k8s.io", "ClusterRoleBinding")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("storage.k8s.io", "CSIDriver")
            | ("storage.k8s.io", "CSINode")
            | ("storage.k8s.io", "StorageClass")
            | ("storage.k8s.io", "VolumeAttachment")
            | ("storage.k8s.io", "VolumeAttributesClass")
            | ("resource.k8s.io", "DeviceClass")
            | ("resource.k8s.io", "ResourceSlice")
            | ("authentication.k8s.io", "TokenReview")
            | ("authentication.k8s.io", "SelfSubjectReview")
            | ("authorization.k8s.io", "SelfSubjectAccessReview")
            | ("authorization.k8s.io", "SelfSubjectRulesReview")
            | ("authorization.k8s.io", "SubjectAccessReview")
    )
}

impl fmt::Display for Gvk {
    /// `Kind.version.group`, with `[noGrp]` for the core group (kustomize's `Gvk.String`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let version = if self.version.is_empty() {
            "[noVer]"
        } else {
            &self.version
        };
        let kind = if self.kind.is_empty() {
            "[noKind]"
        } else {
            &self.kind
        };
        write!(f, "{kind}.{version}.{group}")
    }
}

/// The identity of a resource in a build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (`""` when unset; cluster-scoped kinds always `""`).
    pub namespace: String,
}

impl ResId {
    /// The namespace for comparisons: `default` when unset for namespaced kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            ""
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// Same gvk, name and (effective) namespace.
    pub fn equals(&self, other: &ResId) -> bool {
        self.gvk == other.gvk
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }

    /// Same gvk and name, namespaces ignored.
    pub fn gvkn_equals(&self, other: &ResId) -> bool {
        self.gvk == other.gvk && self.name == other.name
    }
}

impl fmt::Display for ResId {
    /// `Kind.version.group/name.namespace`, with `[noNs]` (kustomize's `ResId.String`); an id
    /// whose version is unknown prints like `Deployment.v1.apps` without the `[noVer]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{name}.{ns}", self.gvk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_kustomize() {
        let id = ResId {
            gvk: Gvk::from_api_version("rbac.authorization.k8s.io/v1", "RoleBinding"),
            name: "test".into(),
            namespace: String::new(),
        };
        assert_eq!(
            id.to_string(),
            "RoleBinding.v1.rbac.authorization.k8s.io/test.[noNs]"
        );
        let core = ResId {
            gvk: Gvk::from_api_version("v1", "ConfigMap"),
            name: "x".into(),
            namespace: "ns".into(),
        };
        assert_eq!(core.to_string(), "ConfigMap.v1.[noGrp]/x.ns");
    }
}
