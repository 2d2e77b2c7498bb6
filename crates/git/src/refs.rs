//! Choosing the commit to check out from a remote's advertised refs.
//!
//! Precedence when several fields are set: `name` > `commit` > `semver` > `tag` > `branch`;
//! with none set, the remote's HEAD branch. Annotated tags resolve to the commit they point at.

use weir_api::source::GitRepositoryRef;

use crate::error::{Error, Result};

/// One ref as advertised by a remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full name, e.g. `refs/heads/main`.
    pub name: String,
    /// The object the ref points at (a tag object for annotated tags).
    pub target: String,
    /// The commit an annotated tag peels to.
    pub peeled: Option<String>,
}

impl RemoteRef {
    /// The commit this ref finally names.
    pub fn commit(&self) -> &str {
        self.peeled.as_deref().unwrap_or(&self.target)
    }
}

/// What the remote advertises.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advertisement {
    /// Every ref.
    pub refs: Vec<RemoteRef>,
    /// The full ref name HEAD points at, e.g. `refs/heads/main`, if the remote says.
    pub head_symref: Option<String>,
}

impl Advertisement {
    fn find(&self, name: &str) -> Option<&RemoteRef> {
        self.refs.iter().find(|r| r.name == name)
    }
}

/// The outcome of ref selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The ref to fetch (`refs/heads/main`, `refs/tags/v1`), or `None` to fetch a bare commit.
    pub refname: Option<String>,
    /// The commit to check out (hex).
    pub commit: String,
    /// The artifact revision: `main@sha1:<c>`, `v1.2.3@sha1:<c>`, `refs/pull/1/head@sha1:<c>`,
    /// or `sha1:<c>` for a bare commit.
    pub revision: String,
}

fn revision(refname: Option<&str>, commit: &str) -> String {
    let algo = if commit.len() == 64 { "sha256" } else { "sha1" };
    match refname {
        Some(name) => {
            let short = name
                .strip_prefix("refs/heads/")
                .or_else(|| name.strip_prefix("refs/tags/"))
                .unwrap_or(name);
            format!("{short}@{algo}:{commit}")
        }
        None => format!("{algo}:{commit}"),
    }
}

fn selected(r: &RemoteRef) -> Selection {
    Selection {
        refname: Some(r.name.clone()),
        commit: r.commit().to_owned(),
        revision: revision(Some(&r.name), r.commit()),
    }
}

/// Picks the commit `reference` asks for among `adv`.
///
/// A `commit` need not be advertised (it is fetched by id); with a `branch` the branch must exist
/// and the revision names it.
pub fn select(reference: Option<&GitRepositoryRef>, adv: &Advertisement) -> Result<Selection> {
    let default = GitRepositoryRef::default();
    let r = reference.unwrap_or(&default);
    if let Some(name) = &r.name {
        return adv
            .find(name)
            .map(selected)
            .ok_or_else(|| Error::RefNotFound(format!("ref {name}")));
    }
    if let Some(commit) = &r.commit {
        let commit = commit.to_ascii_lowercase();
        if let Some(branch) = &r.branch {
            let full = format!("refs/heads/{branch}");
            adv.find(&full)
                .ok_or_else(|| Error::RefNotFound(format!("branch {branch}")))?;
            return Ok(Selection {
                refname: Some(full.clone()),
                revision: revision(Some(&full), &commit),
                commit,
            });
        }
        return Ok(Selection {
            refname: None,
            revision: revision(None, &commit),
            commit,
        });
    }
    if let Some(range) = &r.semver {
        let constraint = Constraint::parse(range)?;
        let best = adv
            .refs
            .iter()
            .filter_map(|r| {
                let tag = r.name.strip_prefix("refs/tags/")?;
                let version = parse_version(tag)?;
                constraint.matches(&version).then_some((version, r))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.name.cmp(&a.1.name)));
        return best
            .map(|(_, r)| selected(r))
            .ok_or_else(|| Error::RefNotFound(format!("no tag matches semver range {range:?}")));
    }
    if let Some(tag) = &r.tag {
        return adv
            .find(&format!("refs/tags/{tag}"))
            .map(selected)
            .ok_or_else(|| Error::RefNotFound(format!("tag {tag}")));
    }
    if let Some(branch) = &r.branch {
        return adv
            .find(&format!("refs/heads/{branch}"))
            .map(selected)
            .ok_or_else(|| Error::RefNotFound(format!("branch {branch}")));
    }
    let head = adv
        .head_symref
        .as_deref()
        .ok_or_else(|| Error::RefNotFound("the remote does not say which branch HEAD is".into()))?;
    adv.find(head)
        .map(selected)
        .ok_or_else(|| Error::RefNotFound(format!("HEAD branch {head}")))
}

/// Parses a tag as a version: an optional `v`, then `MAJOR[.MINOR[.PATCH]][-pre][+build]`.
pub fn parse_version(tag: &str) -> Option<semver::Version> {
    let s = tag.strip_prefix('v').unwrap_or(tag);
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    // Coerce `1` and `1.2` (Masterminds semver accepts them).
    let (core, rest) = match s.find(['-', '+']) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let parts = core.split('.').count();
    if !(1..=2).contains(&parts)
        || !core
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    semver::Version::parse(&format!("{core}{}{rest}", ".0".repeat(3 - parts))).ok()
}

/// A semver range in the syntax Flux accepts: comparators joined by spaces or commas (AND),
/// alternatives joined by `||` (OR), `a - b` ranges, `~`, `^`, `x`/`*` wildcards, `!=`.
#[derive(Debug, Clone)]
pub struct Constraint {
    alternatives: Vec<Vec<Comparator>>,
}

#[derive(Debug, Clone)]
enum Comparator {
    Req(semver::VersionReq),
    Not(semver::Version),
}

impl Constraint {
    /// Parses `range`; the error names the part that could not be read.
    pub fn parse(range: &str) -> Result<Constraint> {
        let invalid = |part: &str| {
            Error::InvalidSpec(format!(
                "invalid semver range {range:?}: cannot read {part:?}"
            ))
        };
        let mut alternatives = Vec::new();
        for alternative in range.split("||") {
            let tokens: Vec<&str> = alternative
                .split([' ', ','])
                .filter(|t| !t.is_empty())
                .collect();
            if tokens.is_empty() {
                return Err(invalid(alternative));
            }
            let mut comparators = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                // `a - b` hyphen range.
                if tokens.get(i + 1) == Some(&"-") {
                    let (lo, hi) = (
                        tokens[i],
                        *tokens.get(i + 2).ok_or_else(|| invalid(alternative))?,
                    );
                    for req in [
                        format!(">={}", lo.trim_start_matches('v')),
                        format!("<={}", hi.trim_start_matches('v')),
                    ] {
                        comparators.push(Comparator::Req(
                            semver::VersionReq::parse(&req).map_err(|_| invalid(&req))?,
                        ));
                    }
                    i += 3;
                    continue;
                }
                // An operator written apart from its version: `>= 1.2`.
                let mut token = tokens[i].to_owned();
                if token.bytes().all(|b| b"<>=!~^".contains(&b)) {
                    token.push_str(tokens.get(i + 1).ok_or_else(|| invalid(&token))?);
                    i += 1;
                }
                i += 1;
                let (op, version) = split_operator(&token);
                let version = version.trim_start_matches('v');
                if op == "!=" {
                    comparators.push(Comparator::Not(
                        parse_version(version).ok_or_else(|| invalid(&token))?,
                    ));
                    continue;
                }
                let op = match op {
                    "~>" => "~",
                    "" if !version.contains(['x', 'X', '*']) => "=",
                    other => other,
                };
                let req = semver::VersionReq::parse(&format!("{op}{version}"))
                    .map_err(|_| invalid(&token))?;
                comparators.push(Comparator::Req(req));
            }
            alternatives.push(comparators);
        }
        Ok(Constraint { alternatives })
    }

    /// Whether `version` satisfies the range.
    pub fn matches(&self, version: &semver::Version) -> bool {
        self.alternatives.iter().any(|all| {
            all.iter().all(|c| match c {
                Comparator::Req(req) => req.matches(version),
                Comparator::Not(v) => v != version,
            })
        })
    }
}

fn split_operator(token: &str) -> (&str, &str) {
    let end = token
        .find(|c: char| !"<>=!~^".contains(c))
        .unwrap_or(token.len());
    token.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";
    const C3: &str = "3333333333333333333333333333333333333333";
    const TAGOBJ: &str = "4444444444444444444444444444444444444444";

    fn adv() -> Advertisement {
        let r = |name: &str, target: &str, peeled: Option<&str>| RemoteRef {
            name: name.into(),
            target: target.into(),
            peeled: peeled.map(Into::into),
        };
        Advertisement {
            refs: vec![
                r("HEAD", C1, None),
                r("refs/heads/main", C1, None),
                r("refs/heads/dev", C2, None),
                r("refs/tags/6.9.4", C2, None),
                r("refs/tags/v6.10.0", TAGOBJ, Some(C3)),
                r("refs/tags/7.0.0", C1, None),
                r("refs/tags/7.1.0-rc.1", C2, None),
                r("refs/tags/not-a-version", C2, None),
                r("refs/pull/1/head", C2, None),
            ],
            head_symref: Some("refs/heads/main".into()),
        }
    }

    fn pick(json: serde_json::Value) -> Result<Selection> {
        let r: GitRepositoryRef = serde_json::from_value(json).unwrap();
        select(Some(&r), &adv())
    }

    #[test]
    fn default_is_the_remote_head_branch() {
        let s = select(None, &adv()).unwrap();
        assert_eq!(s.revision, format!("main@sha1:{C1}"));
        assert_eq!(s.refname.as_deref(), Some("refs/heads/main"));
    }

    #[test]
    fn each_kind_of_ref() {
        assert_eq!(
            pick(serde_json::json!({"branch": "dev"})).unwrap().revision,
            format!("dev@sha1:{C2}")
        );
        let tag = pick(serde_json::json!({"tag": "v6.10.0"})).unwrap();
        assert_eq!(
            (tag.commit.as_str(), tag.revision.as_str()),
            (C3, format!("v6.10.0@sha1:{C3}").as_str()),
            "annotated tags peel"
        );
        assert_eq!(
            pick(serde_json::json!({"name": "refs/pull/1/head"}))
                .unwrap()
                .revision,
            format!("refs/pull/1/head@sha1:{C2}")
        );
        let bare = pick(serde_json::json!({"commit": C3})).unwrap();
        assert_eq!((bare.refname, bare.revision), (None, format!("sha1:{C3}")));
        let on_branch = pick(serde_json::json!({"commit": C3, "branch": "dev"})).unwrap();
        assert_eq!(on_branch.revision, format!("dev@sha1:{C3}"));
        assert_eq!(on_branch.refname.as_deref(), Some("refs/heads/dev"));
    }

    #[test]
    fn precedence_is_name_commit_semver_tag_branch() {
        let all = serde_json::json!({"name": "refs/pull/1/head", "commit": C3, "semver": "*", "tag": "7.0.0", "branch": "main"});
        assert_eq!(
            pick(all).unwrap().revision,
            format!("refs/pull/1/head@sha1:{C2}")
        );
        assert_eq!(
            pick(serde_json::json!({"commit": C3, "semver": "*", "tag": "7.0.0"}))
                .unwrap()
                .commit,
            C3
        );
        assert_eq!(
            pick(serde_json::json!({"semver": "<7.0.0", "tag": "7.0.0", "branch": "dev"}))
                .unwrap()
                .revision,
            format!("v6.10.0@sha1:{C3}")
        );
        assert_eq!(
            pick(serde_json::json!({"tag": "7.0.0", "branch": "dev"}))
                .unwrap()
                .revision,
            format!("7.0.0@sha1:{C1}")
        );
    }

    #[test]
    fn semver_ranges() {
        let cases = [
            (">=6.0.0 <7.0.0", "v6.10.0"),
            (">=6.0.0, <7.0.0", "v6.10.0"),
            (">= 6.0.0 < 7.0.0", "v6.10.0"),
            ("~6.9", "6.9.4"),
            ("^6", "v6.10.0"),
            ("6.x", "v6.10.0"),
            ("*", "7.0.0"),
            ("6.9.4 - 6.9.9", "6.9.4"),
            ("<6.0.0 || >=7.0.0", "7.0.0"),
            (">=6.0.0 !=7.0.0", "v6.10.0"),
            ("6.9.4", "6.9.4"),
            (">=7.1.0-rc.0", "7.1.0-rc.1"),
        ];
        for (range, tag) in cases {
            let s = pick(serde_json::json!({"semver": range}))
                .unwrap_or_else(|e| panic!("{range}: {e}"));
            assert!(
                s.revision.starts_with(&format!("{tag}@")),
                "{range}: got {}",
                s.revision
            );
        }
    }

    #[test]
    fn errors_are_specific() {
        for (json, category) in [
            (serde_json::json!({"branch": "nope"}), "RefNotFound"),
            (serde_json::json!({"tag": "nope"}), "RefNotFound"),
            (
                serde_json::json!({"name": "refs/heads/nope"}),
                "RefNotFound",
            ),
            (serde_json::json!({"semver": ">=9.0.0"}), "RefNotFound"),
            (serde_json::json!({"semver": ">=banana"}), "InvalidSpec"),
            (serde_json::json!({"semver": "||"}), "InvalidSpec"),
            (
                serde_json::json!({"commit": C3, "branch": "nope"}),
                "RefNotFound",
            ),
        ] {
            let e = pick(json.clone()).unwrap_err();
            assert_eq!(e.category(), category, "{json}: {e}");
        }
        let e = pick(serde_json::json!({"semver": ">=banana"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("banana"), "{e}");
    }

    #[test]
    fn version_coercion() {
        assert_eq!(
            parse_version("v1.2").unwrap(),
            semver::Version::new(1, 2, 0)
        );
        assert_eq!(parse_version("3").unwrap(), semver::Version::new(3, 0, 0));
        assert!(parse_version("latest").is_none());
        assert!(parse_version("1.2.3.4").is_none());
    }
}
