//! `weir events`: the Kubernetes Events of weir objects.

use std::io::Write;

use k8s_openapi::{api::core::v1::Event, jiff::Timestamp};
use kube::{Api, api::ListParams};

use crate::{
    client::Cluster,
    error::{Error, Result},
    kinds::{ALL, WeirKind},
    output::{self, Palette},
    write_out,
};

/// One Event, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// Namespace.
    pub namespace: String,
    /// `Normal` or `Warning`.
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// `kind/name` of the object.
    pub object: String,
    /// Message.
    pub message: String,
    /// When it last happened, if known.
    pub time: Option<Timestamp>,
}

fn view(e: &Event) -> EventView {
    let time = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
    EventView {
        namespace: e.metadata.namespace.clone().unwrap_or_default(),
        type_: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object
                .kind
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            e.involved_object.name.clone().unwrap_or_default()
        ),
        message: e.message.clone().unwrap_or_default(),
        time,
    }
}

fn is_weir(e: &Event, kind: Option<&WeirKind>) -> bool {
    let o = &e.involved_object;
    let group = o
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| g);
    ALL.iter()
        .filter(|k| kind.is_none_or(|w| w == **k))
        .any(|k| o.kind.as_deref() == Some(k.kind) && group.is_none_or(|g| g == k.group))
}

/// The Events of one object, oldest first.
pub async fn for_object(
    cluster: &Cluster,
    kind: &WeirKind,
    ns: &str,
    name: &str,
) -> Result<Vec<EventView>> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), ns);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind={},involvedObject.name={name}",
        kind.kind
    ));
    let list = api
        .list(&params)
        .await
        .map_err(|e| Error::kube(e, "events"))?;
    let mut views: Vec<EventView> = list
        .items
        .iter()
        .filter(|e| is_weir(e, Some(kind)))
        .map(view)
        .collect();
    views.sort_by_key(|v| v.time);
    Ok(views)
}

/// Runs `weir events`.
pub async fn run(
    cluster: &Cluster,
    target: Option<(&'static WeirKind, &str)>,
    all_namespaces: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let ns = cluster.namespace.as_str();
    let mut views = match target {
        Some((kind, name)) => {
            // A missing object is not found, not an empty list.
            kind.get(&cluster.client, ns, name).await?;
            for_object(cluster, kind, ns, name).await?
        }
        None => {
            let api: Api<Event> = if all_namespaces {
                Api::all(cluster.client.clone())
            } else {
                Api::namespaced(cluster.client.clone(), ns)
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| Error::kube(e, "events"))?;
            list.items
                .iter()
                .filter(|e| is_weir(e, None))
                .map(view)
                .collect()
        }
    };
    views.sort_by(|a, b| (a.time, &a.object).cmp(&(b.time, &b.object)));
    if views.is_empty() {
        eprintln!("No events found.");
        return Ok(());
    }
    write_out(
        out,
        &table(
            &views,
            all_namespaces && target.is_none(),
            Timestamp::now(),
            Palette::new(output::colour_enabled()),
        ),
    )
}

/// The events table (`LAST SEEN TYPE REASON OBJECT MESSAGE`, as `kubectl events`).
pub fn table(
    views: &[EventView],
    all_namespaces: bool,
    now: Timestamp,
    palette: Palette,
) -> String {
    let mut header = vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let mut row = vec![
                v.time
                    .map(|t| output::human_duration(now.as_second() - t.as_second()))
                    .unwrap_or_else(|| "<unknown>".into()),
                if v.type_ == "Warning" {
                    palette.red(&v.type_)
                } else {
                    v.type_.clone()
                },
                v.reason.clone(),
                v.object.clone(),
                v.message.split_whitespace().collect::<Vec<_>>().join(" "),
            ];
            if all_namespaces {
                row.insert(0, v.namespace.clone());
            }
            row
        })
        .collect();
    output::table(&header, &rows)
}
