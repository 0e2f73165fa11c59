//! A local HTTP server that speaks the part of the Kubernetes API server
//! protocol the watch backend uses: discovery documents, cluster-wide lists
//! with a resourceVersion, chunked watch streams (replayed from the requested
//! resourceVersion, like etcd's history), 404 for APIs it does not serve, and
//! watch connections the test can cut.
//!
//! It is for the faults a real API server cannot be made to produce on
//! demand (a cut watch, a compacted history, an API that disappears); what a
//! cluster does to Tollgate is tested against the real kube-apiserver in
//! `tests/cluster.rs`. It drives the real kube-rs client, discovery and
//! watcher code over real HTTP.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tollgate_sdk::api::split_api_version;

type Body = BoxBody<Bytes, io::Error>;
type Chunk = Result<Bytes, io::Error>;

#[derive(Clone)]
struct Resource {
    api_version: String,
    kind: String,
    plural: String,
    namespaced: bool,
}

/// (apiVersion, plural)
type Key = (String, String);

struct Watcher {
    key: Key,
    filter: Filter,
    tx: mpsc::UnboundedSender<Chunk>,
}

/// What one list or watch request selects within its type: a namespace
/// (`/namespaces/NS/…`), equality labels (`labelSelector=k=v,…`) and a
/// name (`fieldSelector=metadata.name=…`), as the real server filters.
#[derive(Debug, Clone, Default)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<(String, String)>,
    name: Option<String>,
}

impl Filter {
    fn new(namespace: Option<String>, query: &HashMap<String, String>) -> Self {
        let terms = |key: &str| -> Vec<(String, String)> {
            query
                .get(key)
                .map(|v| percent_decode(v))
                .into_iter()
                .flat_map(|v| {
                    v.split(',')
                        .filter_map(|t| t.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let name = terms("fieldSelector")
            .into_iter()
            .find(|(k, _)| k == "metadata.name")
            .map(|(_, v)| v);
        Self {
            namespace,
            labels: terms("labelSelector"),
            name,
        }
    }

    fn selects(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta["namespace"].as_str() == Some(ns))
            && self
                .name
                .as_deref()
                .is_none_or(|n| meta["name"].as_str() == Some(n))
            && self
                .labels
                .iter()
                .all(|(k, v)| meta["labels"][k].as_str() == Some(v.as_str()))
    }
}

/// `%3D` → `=`: enough for selectors.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct State {
    resources: Vec<Resource>,
    objects: HashMap<Key, BTreeMap<(Option<String>, String), Value>>,
    resource_version: u64,
    /// Every event ever sent, for watches that resume from a resourceVersion.
    history: Vec<(u64, Key, String, Value)>,
    watchers: Vec<Watcher>,
    requests: Vec<String>,
    failing: bool,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
}

pub struct FakeApiServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    hold_lists: watch::Sender<bool>,
    hold_watches: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_watches();
    }
}

impl FakeApiServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (hold_lists, lists_held) = watch::channel(false);
        let (hold_watches, watches_held) = watch::channel(false);
        let held = Held {
            lists: lists_held,
            watches: watches_held,
        };
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                let held = held.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(state.clone(), held.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}"),
            state,
            hold_lists,
            hold_watches,
            accept,
        }
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Starts serving a resource type (it appears in discovery).
    pub fn serve(&self, api_version: &str, kind: &str, plural: &str, namespaced: bool) {
        self.state().resources.push(Resource {
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        });
    }

    /// Stops serving a resource type: discovery and lists answer 404.
    pub fn unserve(&self, api_version: &str, kind: &str) {
        self.state()
            .resources
            .retain(|r| !(r.api_version == api_version && r.kind == kind));
    }

    /// Creates or replaces an object, notifying watches.
    pub fn apply(&self, api_version: &str, plural: &str, mut object: Value) {
        let mut state = self.state();
        let kind = state
            .resources
            .iter()
            .find(|r| r.api_version == api_version && r.plural == plural)
            .map(|r| r.kind.clone())
            .expect("apply to a served resource");
        state.resource_version += 1;
        let rv = state.resource_version;
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key: Key = (api_version.into(), plural.into());
        let id = object_id(&object);
        let old = state
            .objects
            .entry(key.clone())
            .or_default()
            .insert(id, object.clone());
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        state.emit(rv, key, kind, object);
    }

    /// Deletes an object, notifying watches.
    pub fn delete(&self, api_version: &str, plural: &str, namespace: Option<&str>, name: &str) {
        let mut state = self.state();
        let key: Key = (api_version.into(), plural.into());
        let id = (namespace.map(str::to_owned), name.to_owned());
        let mut object = state
            .objects
            .get_mut(&key)
            .and_then(|objects| objects.remove(&id))
            .expect("delete an existing object");
        state.resource_version += 1;
        let rv = state.resource_version;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        state.emit(rv, key, "DELETED", object);
    }

    /// Adds many objects at once without recording watch history (for large
    /// initial states).
    pub fn preload(
        &self,
        api_version: &str,
        plural: &str,
        objects: impl IntoIterator<Item = Value>,
    ) {
        let mut state = self.state();
        state.resource_version += 1;
        let rv = state.resource_version.to_string();
        let store = state
            .objects
            .entry((api_version.into(), plural.into()))
            .or_default();
        for mut object in objects {
            object["metadata"]["resourceVersion"] = json!(rv);
            store.insert(object_id(&object), object);
        }
    }

    /// Cuts every open watch connection mid-stream (the client sees an
    /// incomplete chunked body).
    pub fn drop_watches(&self) {
        for w in self.state().watchers.drain(..) {
            let _ =
                w.tx.send(Err(io::Error::other("connection dropped by the test")));
        }
    }

    /// Open watch connections for a resource.
    pub fn watch_count(&self, api_version: &str, plural: &str) -> usize {
        let state = self.state();
        state
            .watchers
            .iter()
            .filter(|w| w.key.0 == api_version && w.key.1 == plural && !w.tx.is_closed())
            .count()
    }

    /// Waits until `n` watches of a resource are open.
    pub async fn wait_for_watches(&self, api_version: &str, plural: &str, n: usize) {
        eventually(|| self.watch_count(api_version, plural) >= n).await;
    }

    /// Forgets the event history, like etcd compaction: a watch resuming
    /// from an older resourceVersion gets `410 Gone` and must relist.
    pub fn compact(&self) {
        let mut state = self.state();
        state.compacted = state.resource_version;
        state.history.clear();
    }

    /// While held, list requests wait (the cache cannot sync).
    pub fn hold_lists(&self, held: bool) {
        self.hold_lists.send_replace(held);
    }

    /// While held, watch requests wait (nothing can resume).
    pub fn hold_watches(&self, held: bool) {
        self.hold_watches.send_replace(held);
    }

    /// While failing, every request answers 500.
    pub fn set_failing(&self, failing: bool) {
        self.state().failing = failing;
    }

    /// Paths and queries received so far.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }
}

impl State {
    fn emit(&mut self, rv: u64, key: Key, kind: &str, object: Value) {
        let mut line = serde_json::to_string(&json!({"type": kind, "object": object})).unwrap();
        line.push('\n');
        self.watchers.retain(|w| {
            w.key != key
                || !w.filter.selects(&object)
                || w.tx.send(Ok(Bytes::from(line.clone()))).is_ok()
        });
        self.history.push((rv, key, line, object));
    }
}

fn object_id(object: &Value) -> (Option<String>, String) {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().map(str::to_owned),
        meta["name"]
            .as_str()
            .expect("objects have a name")
            .to_owned(),
    )
}

/// Polls `condition` every 10 ms for up to 10 s.
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 10 s");
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .unwrap()
}

fn json_response(value: &Value) -> Response<Body> {
    full(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(value).unwrap(),
    )
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    full(
        StatusCode::from_u16(code).unwrap(),
        "application/json",
        serde_json::to_vec(&body).unwrap(),
    )
}

/// What a real API server answers for a path it does not route.
fn page_not_found() -> Response<Body> {
    full(StatusCode::NOT_FOUND, "text/plain", "404 page not found")
}

#[derive(Clone)]
struct Held {
    lists: watch::Receiver<bool>,
    watches: watch::Receiver<bool>,
}

async fn handle(
    state: Arc<Mutex<State>>,
    mut held: Held,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    {
        let mut s = state.lock().unwrap();
        s.requests.push(req.uri().to_string());
        if s.failing {
            return Ok(status(
                500,
                "InternalError",
                "the test made the server fail",
            ));
        }
    }
    let Some((api_version, plural, namespace)) = route(&path) else {
        return Ok(discovery(&state.lock().unwrap(), &path));
    };
    let Some(plural) = plural else {
        return Ok(resource_list(&state.lock().unwrap(), &api_version));
    };
    let served = {
        let s = state.lock().unwrap();
        s.resources
            .iter()
            .find(|r| r.api_version == api_version && r.plural == plural)
            .cloned()
    };
    let Some(resource) = served else {
        return Ok(page_not_found());
    };
    let key: Key = (api_version, plural);
    let filter = Filter::new(namespace, &query);
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let since: u64 = query
            .get("resourceVersion")
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        let _ = held.watches.wait_for(|held| !held).await;
        return Ok(start_watch(&state, key, filter, since));
    }
    let _ = held.lists.wait_for(|held| !held).await;
    let s = state.lock().unwrap();
    // Pages of `limit` items; the continue token is the offset.
    let offset: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let selected: Vec<&Value> = s
        .objects
        .get(&key)
        .into_iter()
        .flat_map(BTreeMap::values)
        .filter(|o| filter.selects(o))
        .collect();
    let all = selected.len();
    let next = (offset.saturating_add(limit) < all).then(|| (offset + limit).to_string());
    let items: Vec<Value> = selected
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|o| {
            // Like the real server: list items carry no apiVersion/kind.
            let mut o = o.clone();
            let map = o.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            o
        })
        .collect();
    Ok(json_response(&json!({
        "apiVersion": resource.api_version,
        "kind": format!("{}List", resource.kind),
        "metadata": {"resourceVersion": s.resource_version.to_string(), "continue": next},
        "items": items,
    })))
}

/// `(apiVersion, Some(plural), namespace)` for a collection (cluster-wide,
/// or in `/namespaces/NS/`), `(apiVersion, None, None)` for a group-version
/// discovery document, `None` for anything else.
fn route(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let (api_version, rest) = if let Some(rest) = path.strip_prefix("/api/") {
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        (version.to_owned(), rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?;
        let version = parts.next()?;
        (format!("{group}/{version}"), parts.next().unwrap_or(""))
    };
    let (namespace, rest) = match rest.strip_prefix("namespaces/") {
        Some(namespaced) => match namespaced.split_once('/') {
            Some((ns, plural)) => (Some(ns.to_owned()), plural),
            // `/api/v1/namespaces/NAME` is one Namespace, not a collection.
            None => return None,
        },
        None => (None, rest),
    };
    match rest {
        "" if namespace.is_none() => Some((api_version, None, None)),
        plural if !plural.is_empty() && !plural.contains('/') => {
            Some((api_version, Some(plural.to_owned()), namespace))
        }
        _ => None,
    }
}

fn discovery(state: &State, path: &str) -> Response<Body> {
    match path {
        "/api" => json_response(
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/apis" => {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for r in &state.resources {
                match split_api_version(&r.api_version) {
                    ("", _) => {}
                    (group, _) => groups.entry(group).or_default().push(&r.api_version),
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(name, versions)| {
                    let versions: Vec<Value> = versions
                        .iter()
                        .map(|gv| json!({"groupVersion": gv, "version": split_api_version(gv).1}))
                        .collect();
                    json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            json_response(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        _ => page_not_found(),
    }
}

fn resource_list(state: &State, api_version: &str) -> Response<Body> {
    let resources: Vec<Value> = state
        .resources
        .iter()
        .filter(|r| r.api_version == api_version)
        .map(|r| {
            json!({
                "name": r.plural, "singularName": r.kind.to_lowercase(),
                "namespaced": r.namespaced, "kind": r.kind,
                "verbs": ["get", "list", "watch"],
            })
        })
        .collect();
    if resources.is_empty() && api_version != "v1" {
        return page_not_found();
    }
    json_response(&json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": api_version, "resources": resources,
    }))
}

fn start_watch(state: &Mutex<State>, key: Key, filter: Filter, since: u64) -> Response<Body> {
    let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
    let mut s = state.lock().unwrap();
    if since < s.compacted {
        // What the API server sends: an ERROR event, then the end.
        let gone = json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {since} ({})", s.compacted),
            "reason": "Expired", "code": 410,
        }});
        let line = format!("{gone}\n");
        return full(StatusCode::OK, "application/json", line);
    }
    for (rv, k, line, object) in &s.history {
        if *rv > since && *k == key && filter.selects(object) {
            let _ = tx.send(Ok(Bytes::from(line.clone())));
        }
    }
    s.watchers.push(Watcher { key, filter, tx });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map(Frame::data), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}
