//! Selecting objects: kustomize's `Selector` (anchored regexes for group, version, kind, name and
//! namespace; Kubernetes label and annotation selectors).

use regex::Regex;

use crate::error::{Error, Result};
use crate::kustomization::Selector;
use crate::resmap::ResMap;
use crate::resource::Resource;

fn anchored(p: &str) -> Result<Option<Regex>> {
    if p.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{p})$"))
        .map(Some)
        .map_err(|e| Error::msg(format!("invalid selector pattern '{p}': {e}")))
}

fn matches(re: &Option<Regex>, s: &str) -> bool {
    re.as_ref().is_none_or(|r| r.is_match(s))
}

/// A compiled selector.
pub struct Compiled {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

impl Compiled {
    /// Compiles a selector.
    pub fn new(s: &Selector) -> Result<Compiled> {
        Ok(Compiled {
            group: anchored(&s.group)?,
            version: anchored(&s.version)?,
            kind: anchored(&s.kind)?,
            name: anchored(&s.name)?,
            namespace: anchored(&s.namespace)?,
            labels: parse_selector(&s.label_selector)?,
            annotations: parse_selector(&s.annotation_selector)?,
        })
    }

    /// Whether the selector picks `r` (original or current name and namespace).
    pub fn selects(&self, r: &Resource) -> bool {
        let cur = r.cur_id();
        let org = r.org_id();
        if !matches(&self.namespace, org.effective_namespace())
            && !matches(&self.namespace, cur.effective_namespace())
        {
            return false;
        }
        if !matches(&self.name, &org.name) && !matches(&self.name, &cur.name) {
            return false;
        }
        let gvk = r.gvk();
        if !matches(&self.group, &gvk.group)
            || !matches(&self.version, &gvk.version)
            || !matches(&self.kind, &gvk.kind)
        {
            return false;
        }
        let labels = r.labels();
        let annotations = r.annotations();
        self.labels.iter().all(|q| q.matches(&labels))
            && self.annotations.iter().all(|q| q.matches(&annotations))
    }
}

/// Indices of the resources a selector picks.
pub fn select(m: &ResMap, s: &Selector) -> Result<Vec<usize>> {
    let c = Compiled::new(s)?;
    Ok(m.resources()
        .iter()
        .enumerate()
        .filter(|(_, r)| c.selects(r))
        .map(|(i, _)| i)
        .collect())
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// `key=value` / `key==value`.
    Equals(String, String),
    /// `key!=value`.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: &[(String, String)]) -> bool {
        let get = |k: &str| labels.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Parses a Kubernetes label selector string.
pub fn parse_selector(s: &str) -> Result<Vec<Requirement>> {
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    let bad = |p: &str| Error::msg(format!("invalid label selector '{s}' at '{p}'"));
    for part in parts {
        let p = part.trim();
        if p.is_empty() {
            return Err(bad(p));
        }
        if let Some(k) = p.strip_prefix('!') {
            out.push(Requirement::NotExists(k.trim().to_string()));
        } else if let Some((k, v)) = p.split_once("!=") {
            out.push(Requirement::NotEquals(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==") {
            out.push(Requirement::Equals(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once('=') {
            out.push(Requirement::Equals(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            out.push(Requirement::NotIn(
                k.trim().into(),
                set_values(rest).ok_or_else(|| bad(p))?,
            ));
        } else if let Some((k, rest)) = p.split_once(" in ") {
            out.push(Requirement::In(
                k.trim().into(),
                set_values(rest).ok_or_else(|| bad(p))?,
            ));
        } else if p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            out.push(Requirement::Exists(p.to_string()));
        } else {
            return Err(bad(p));
        }
    }
    Ok(out)
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_selectors() {
        let r = parse_selector("app=a, tier in (x,y),!legacy,env!=prod").unwrap();
        assert_eq!(r.len(), 4);
        let labels = vec![
            ("app".to_string(), "a".to_string()),
            ("tier".to_string(), "y".to_string()),
        ];
        assert!(r.iter().all(|q| q.matches(&labels)));
        assert!(parse_selector("a=(").is_ok());
        assert!(parse_selector("a b").is_err());
    }
}
