//! `weir get`: tables of weir objects, the pipeline they form, `-o yaml|json`, `--watch`.

use std::{collections::BTreeSet, io::Write};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::{
    api::{DynamicObject, ListParams},
    runtime::{WatchStreamExt, watcher},
};

use crate::{
    args::GetArgs,
    client::Cluster,
    error::{Error, Result},
    kinds::{self, ALL, WeirKind},
    output::{self, Format, Palette},
    write_out,
};

/// Objects of one kind.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Their kind.
    pub kind: &'static WeirKind,
    /// The objects, sorted by namespace and name.
    pub objects: Vec<DynamicObject>,
}

/// Runs `weir get`.
pub async fn run(cluster: &Cluster, args: &GetArgs, out: &mut dyn Write) -> Result<()> {
    let all = args.what.eq_ignore_ascii_case("all");
    let wanted: Vec<&'static WeirKind> = if all {
        ALL.to_vec()
    } else {
        vec![WeirKind::parse(&args.what)?]
    };
    if all && args.name.is_some() {
        return Err(Error::Usage("get all takes no name".into()));
    }
    let namespace = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    let mut listed = Vec::new();
    for kind in &wanted {
        listed.push(list(cluster, kind, namespace, args.name.as_deref()).await?);
    }
    let palette = Palette::new(output::colour_enabled());
    let now = Timestamp::now();
    match args.output {
        Format::Json | Format::Yaml => {
            let items: Vec<&DynamicObject> = listed.iter().flat_map(|l| &l.objects).collect();
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
            let text = if args.output == Format::Json {
                let mut t = serde_json::to_string_pretty(&list)
                    .map_err(|e| Error::Failed(format!("encoding JSON: {e}")))?;
                t.push('\n');
                t
            } else {
                serde_yaml::to_string(&list)
                    .map_err(|e| Error::Failed(format!("encoding YAML: {e}")))?
            };
            write_out(out, &text)?;
        }
        Format::Table => {
            let text = if all {
                all_view(&listed, args.all_namespaces, now, palette)
            } else {
                let l = &listed[0];
                if l.objects.is_empty() && !args.watch {
                    String::new()
                } else {
                    table(l, args.all_namespaces, false, now, palette)
                }
            };
            if text.is_empty() && !args.watch {
                let place = match namespace {
                    Some(ns) => format!("in namespace {ns}"),
                    None => "in any namespace".into(),
                };
                // kubectl says this on stderr; stdout stays empty for scripts.
                eprintln!("No {} found {place}.", wanted_names(&wanted));
            }
            write_out(out, &text)?;
        }
    }
    if args.watch {
        watch(cluster, &wanted, namespace, args, out, palette).await?;
    }
    Ok(())
}

fn wanted_names(wanted: &[&WeirKind]) -> String {
    wanted
        .iter()
        .map(|k| k.plural)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lists one kind (or gets one object).
pub async fn list(
    cluster: &Cluster,
    kind: &'static WeirKind,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Listed> {
    let mut objects = match name {
        Some(name) => {
            let ns = namespace.unwrap_or(&cluster.namespace);
            vec![kind.get(&cluster.client, ns, name).await?]
        }
        None => {
            kind.api(&cluster.client, namespace)
                .list(&ListParams::default())
                .await
                .map_err(|e| match &e {
                    kube::Error::Api(s) if s.code == 404 => kind.kind_missing(),
                    _ => Error::kube(e, kind.plural),
                })?
                .items
        }
    };
    objects.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(Listed { kind, objects })
}

/// The header of a kind's table.
fn header(all_namespaces: bool) -> Vec<&'static str> {
    let mut h = vec!["NAME", "READY", "STATUS", "REVISION", "SUSPENDED", "AGE"];
    if all_namespaces {
        h.insert(0, "NAMESPACE");
    }
    h
}

/// One table row.
pub fn row(
    kind: &WeirKind,
    obj: &DynamicObject,
    all_namespaces: bool,
    qualified: bool,
    now: Timestamp,
    palette: Palette,
) -> Vec<String> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let ready = kinds::condition(obj, "Ready");
    let (status, message) = match &ready {
        Some(c) => (c.status.clone(), c.message.clone()),
        None => ("Unknown".into(), "waiting to be reconciled".into()),
    };
    let mut row = vec![
        if qualified { kind.display(&name) } else { name },
        palette.ready(&status),
        output::truncate(&message, 400),
        kind.revision(obj).unwrap_or_default(),
        kinds::suspended(obj).to_string(),
        obj.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| output::age(t.0, now))
            .unwrap_or_else(|| "<unknown>".into()),
    ];
    if all_namespaces {
        row.insert(0, obj.metadata.namespace.clone().unwrap_or_default());
    }
    row
}

/// The table of one kind.
pub fn table(
    listed: &Listed,
    all_namespaces: bool,
    qualified: bool,
    now: Timestamp,
    palette: Palette,
) -> String {
    let rows: Vec<Vec<String>> = listed
        .objects
        .iter()
        .map(|o| row(listed.kind, o, all_namespaces, qualified, now, palette))
        .collect();
    output::table(&header(all_namespaces), &rows)
}

/// `weir get all`: one table per kind that has objects, then the pipeline.
pub fn all_view(
    listed: &[Listed],
    all_namespaces: bool,
    now: Timestamp,
    palette: Palette,
) -> String {
    let mut sections: Vec<String> = listed
        .iter()
        .filter(|l| !l.objects.is_empty())
        .map(|l| table(l, all_namespaces, true, now, palette))
        .collect();
    if sections.is_empty() {
        return String::new();
    }
    let chains = pipeline(listed, palette);
    if !chains.is_empty() {
        sections.push(format!("PIPELINE\n{chains}"));
    }
    sections.join("\n")
}

/// A node of the pipeline: kind, namespace, name.
type Node = (&'static WeirKind, String, String);

/// The source → render → apply chains, one per line, ending at every object nothing consumes.
/// Each step shows `kind/name` (with `namespace/` when it differs from the chain's end) and its
/// Ready status; a reference to an object that does not exist shows `(missing)`.
pub fn pipeline(listed: &[Listed], palette: Palette) -> String {
    let find = |kind: &WeirKind, ns: &str, name: &str| -> Option<&DynamicObject> {
        listed
            .iter()
            .filter(|l| l.kind == kind)
            .flat_map(|l| &l.objects)
            .find(|o| {
                o.metadata.namespace.as_deref() == Some(ns)
                    && o.metadata.name.as_deref() == Some(name)
            })
    };
    // Everything some consumer reads.
    let mut consumed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for l in listed.iter().filter(|l| l.kind.has_source) {
        for o in &l.objects {
            if let Some(r) = kinds::source_ref(o)
                && let Some(k) = WeirKind::of_reference(&r.kind, r.api_version.as_deref())
            {
                consumed.insert((k.kind.to_owned(), r.namespace, r.name));
            }
        }
    }
    let mut lines = Vec::new();
    for l in listed.iter().filter(|l| l.kind.in_pipeline) {
        for end in &l.objects {
            let ns = end.metadata.namespace.clone().unwrap_or_default();
            let name = end.metadata.name.clone().unwrap_or_default();
            if consumed.contains(&(l.kind.kind.to_owned(), ns.clone(), name.clone())) {
                continue;
            }
            // Walk upstream from the end of the chain (bounded: a cycle cannot loop forever).
            let mut steps: Vec<String> = Vec::new();
            let mut current: Option<(Node, Option<&DynamicObject>)> =
                Some(((l.kind, ns.clone(), name), Some(end)));
            let mut seen = BTreeSet::new();
            while let Some(((kind, step_ns, step_name), obj)) = current.take() {
                if !seen.insert((kind.kind, step_ns.clone(), step_name.clone())) || steps.len() > 8
                {
                    break;
                }
                let label = if step_ns == ns {
                    kind.display(&step_name)
                } else {
                    format!("{step_ns}/{}", kind.display(&step_name))
                };
                let Some(obj) = obj else {
                    steps.push(format!("{label} {}", palette.red("(missing)")));
                    break;
                };
                let ready = kinds::condition(obj, "Ready")
                    .map(|c| c.status)
                    .unwrap_or_else(|| "Unknown".into());
                let mut step = format!("{label} ({})", palette.ready(&ready));
                if kinds::suspended(obj) {
                    step.push_str(" [suspended]");
                }
                steps.push(step);
                if let Some(r) = kinds::source_ref(obj) {
                    match WeirKind::of_reference(&r.kind, r.api_version.as_deref()) {
                        Some(k) => {
                            let up = find(k, &r.namespace, &r.name);
                            current = Some(((k, r.namespace, r.name), up));
                        }
                        None => steps.push(format!("{}/{}", r.kind.to_ascii_lowercase(), r.name)),
                    }
                }
            }
            steps.reverse();
            lines.push(steps.join(" → "));
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

async fn watch(
    cluster: &Cluster,
    wanted: &[&'static WeirKind],
    namespace: Option<&str>,
    args: &GetArgs,
    out: &mut dyn Write,
    palette: Palette,
) -> Result<()> {
    let qualified = wanted.len() > 1;
    let mut config = watcher::Config::default();
    if let Some(name) = &args.name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    let streams = wanted.iter().map(|kind| {
        let kind: &'static WeirKind = kind;
        // Transient errors (a dropped connection, an expired resourceVersion) retry with backoff.
        watcher(kind.api(&cluster.client, namespace), config.clone())
            .default_backoff()
            .map_ok(move |e| (kind, e))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut initialised = 0;
    while let Some(event) = events.next().await {
        let (kind, event) = event.map_err(|e| Error::Failed(format!("watch: {e}")))?;
        let obj = match event {
            watcher::Event::InitDone => {
                initialised += 1;
                continue;
            }
            // The listing above already showed the initial state.
            watcher::Event::Init | watcher::Event::InitApply(_) => continue,
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => o,
        };
        if initialised < wanted.len() {
            continue;
        }
        // -o yaml|json: each changed object as one more document (YAML) or line (JSON).
        match args.output {
            Format::Yaml => {
                let doc = serde_yaml::to_string(&obj)
                    .map_err(|e| Error::Failed(format!("encoding YAML: {e}")))?;
                write_out(out, &format!("---\n{doc}"))?;
                continue;
            }
            Format::Json => {
                let line = serde_json::to_string(&obj)
                    .map_err(|e| Error::Failed(format!("encoding JSON: {e}")))?;
                write_out(out, &format!("{line}\n"))?;
                continue;
            }
            Format::Table => {}
        }
        let row = row(
            kind,
            &obj,
            args.all_namespaces,
            qualified,
            Timestamp::now(),
            palette,
        );
        let text = output::table(&header(args.all_namespaces), &[row]);
        // Only the row; the header was printed with the listing.
        let line = text.lines().nth(1).unwrap_or_default();
        write_out(out, &format!("{line}\n"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{APPLY, GIT_REPOSITORY, RENDER};

    fn obj(
        kind: &WeirKind,
        ns: &str,
        name: &str,
        ready: &str,
        source: Option<(&str, &str, Option<&str>)>,
    ) -> DynamicObject {
        let mut o = DynamicObject::new(name, &kind.resource()).within(ns);
        let mut spec = serde_json::json!({});
        if let Some((k, n, source_ns)) = source {
            spec["sourceRef"] = serde_json::json!({ "kind": k, "name": n });
            if let Some(s) = source_ns {
                spec["sourceRef"]["namespace"] = s.into();
            }
        }
        o.data = serde_json::json!({
            "spec": spec,
            "status": { "conditions": [{ "type": "Ready", "status": ready, "reason": "R", "message": "m" }] },
        });
        o
    }

    #[test]
    fn chains_end_at_what_nothing_consumes() {
        let listed = [
            Listed {
                kind: &GIT_REPOSITORY,
                objects: vec![
                    obj(&GIT_REPOSITORY, "a", "repo", "True", None),
                    obj(&GIT_REPOSITORY, "shared", "infra", "True", None),
                    obj(&GIT_REPOSITORY, "a", "lonely", "False", None),
                ],
            },
            Listed {
                kind: &RENDER,
                objects: vec![obj(
                    &RENDER,
                    "a",
                    "web",
                    "True",
                    Some(("GitRepository", "repo", None)),
                )],
            },
            Listed {
                kind: &APPLY,
                objects: vec![
                    obj(&APPLY, "a", "web", "Unknown", Some(("Render", "web", None))),
                    obj(
                        &APPLY,
                        "a",
                        "infra",
                        "True",
                        Some(("GitRepository", "infra", Some("shared"))),
                    ),
                    obj(
                        &APPLY,
                        "a",
                        "gone",
                        "False",
                        Some(("Render", "missing", None)),
                    ),
                    obj(&APPLY, "a", "flux", "False", Some(("Bucket", "b", None))),
                ],
            },
        ];
        assert_eq!(
            pipeline(&listed, Palette::new(false)),
            "gitrepository/lonely (False)\n\
             gitrepository/repo (True) → render/web (True) → apply/web (Unknown)\n\
             shared/gitrepository/infra (True) → apply/infra (True)\n\
             render/missing (missing) → apply/gone (False)\n\
             bucket/b → apply/flux (False)\n"
        );
    }
}
