//! The query APIs as the steps call them: LogQL (`query_range`), PromQL (`query`), Tempo
//! (`/api/traces/{id}`, `/api/search`), readiness and Grafana. Every call returns an
//! [`Exchange`]: what was asked, the URL, the status and the body, so a failing step can show
//! exactly what it sent and what came back.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use stack::Endpoints;
use url::Url;
pub use wire::time::now_ns;

/// How much of a body a failure message shows.
const BODY_SHOWN: usize = 1500;

/// One request and its answer.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// The query in its own language (LogQL, PromQL, TraceQL, tags), or what was asked.
    pub query: String,
    pub method: String,
    pub url: String,
    /// 0 when there was no answer.
    pub status: u16,
    /// The body, or the transport error.
    pub body: String,
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = if self.body.len() > BODY_SHOWN {
            let mut end = BODY_SHOWN;
            while !self.body.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}... ({} bytes)", &self.body[..end], self.body.len())
        } else {
            self.body.clone()
        };
        if !self.query.is_empty() {
            writeln!(f, "  query:    {}", self.query)?;
        }
        writeln!(f, "  request:  {} {}", self.method, self.url)?;
        if self.status == 0 {
            write!(f, "  no answer: {body}")
        } else {
            write!(f, "  answer:   HTTP {}: {body}", self.status)
        }
    }
}

/// Why an exchange's answer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot build a URL from {base} and {path}: {reason}")]
    Url {
        base: String,
        path: String,
        reason: String,
    },
}

impl Exchange {
    /// A 2xx answer?
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// `data.result` of a Loki or Prometheus answer.
    pub fn result(&self) -> Vec<Value> {
        self.json()
            .and_then(|j| j.pointer("/data/result").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }

    /// A Loki log query's streams: (labels, lines).
    pub fn streams(&self) -> Vec<(serde_json::Map<String, Value>, Vec<String>)> {
        self.result()
            .into_iter()
            .map(|s| {
                let labels = labels_at(&s, "stream");
                let lines = s
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.get(1).and_then(Value::as_str).map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                (labels, lines)
            })
            .collect()
    }

    /// Every line of a Loki log query.
    pub fn lines(&self) -> Vec<String> {
        self.streams().into_iter().flat_map(|(_, l)| l).collect()
    }

    /// A Prometheus instant vector: (labels, value).
    pub fn vector(&self) -> Vec<(serde_json::Map<String, Value>, f64)> {
        self.result()
            .into_iter()
            .map(|s| {
                let labels = labels_at(&s, "metric");
                let v = s
                    .pointer("/value/1")
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                (labels, v)
            })
            .collect()
    }
}

/// A Prometheus instant vector as the steps read it: (labels, value) per series.
pub type Vector = [(serde_json::Map<String, Value>, f64)];

/// A label of a JSON label map as a string.
pub fn label<'a>(labels: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    labels.get(name).and_then(Value::as_str)
}

/// The query APIs of one stack.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    endpoints: Endpoints,
}

fn join(base: &Url, path: &str) -> Result<Url, QueryError> {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        b.set_path(&format!("{}/", b.path()));
    }
    b.join(path.trim_start_matches('/'))
        .map_err(|e| QueryError::Url {
            base: base.to_string(),
            path: path.to_string(),
            reason: e.to_string(),
        })
}

impl Api {
    pub fn new(endpoints: &Endpoints) -> Api {
        Api {
            http: stack::client::shared_http_client(),
            endpoints: endpoints.clone(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// GET `url` with the stack's tenant and credentials; never fails: a transport error is an
    /// exchange with status 0.
    pub async fn get(&self, query: &str, url: Url) -> Exchange {
        let shown = wire::redact::url(url.as_str()).into_owned();
        let rb = self
            .endpoints
            .decorate(self.http.get(url))
            .timeout(Duration::from_secs(10));
        let mut ex = Exchange {
            query: query.to_string(),
            method: "GET".into(),
            url: shown,
            ..Exchange::default()
        };
        match rb.send().await {
            Ok(resp) => {
                ex.status = resp.status().as_u16();
                ex.body = resp.text().await.unwrap_or_else(|e| e.to_string());
            }
            Err(e) => ex.body = chain(&e.without_url()),
        }
        ex
    }

    fn with_query(
        url: Result<Url, QueryError>,
        params: &[(&str, String)],
    ) -> Result<Url, QueryError> {
        let mut url = url?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// LogQL over the last `since`, forward, up to `limit` entries.
    pub async fn logql(
        &self,
        q: &str,
        since: Duration,
        limit: u32,
    ) -> Result<Exchange, QueryError> {
        let end = now_ns() + 60_000_000_000;
        let start = now_ns() - since.as_nanos() as i64;
        let url = Self::with_query(
            join(&self.endpoints.loki, "loki/api/v1/query_range"),
            &[
                ("query", q.to_string()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("limit", limit.to_string()),
                ("direction", "forward".into()),
            ],
        )?;
        Ok(self.get(q, url).await)
    }

    /// A LogQL metric query at now (instant).
    pub async fn logql_instant(&self, q: &str) -> Result<Exchange, QueryError> {
        let url = Self::with_query(
            join(&self.endpoints.loki, "loki/api/v1/query"),
            &[("query", q.to_string())],
        )?;
        Ok(self.get(q, url).await)
    }

    /// PromQL at now.
    pub async fn promql(&self, q: &str) -> Result<Exchange, QueryError> {
        let url = Self::with_query(
            join(&self.endpoints.prometheus_query, "api/v1/query"),
            &[("query", q.to_string())],
        )?;
        Ok(self.get(q, url).await)
    }

    /// A PromQL range query over the last `since`.
    pub async fn promql_range(&self, q: &str, since: Duration) -> Result<Exchange, QueryError> {
        let end = chrono::Utc::now().timestamp();
        let start = end - since.as_secs() as i64;
        let url = Self::with_query(
            join(&self.endpoints.prometheus_query, "api/v1/query_range"),
            &[
                ("query", q.to_string()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", "5s".into()),
            ],
        )?;
        Ok(self.get(q, url).await)
    }

    /// LogQL range metric query over the last `since`.
    pub async fn logql_range_metric(
        &self,
        q: &str,
        since: Duration,
    ) -> Result<Exchange, QueryError> {
        let end = now_ns();
        let start = end - since.as_nanos() as i64;
        let url = Self::with_query(
            join(&self.endpoints.loki, "loki/api/v1/query_range"),
            &[
                ("query", q.to_string()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", "5s".into()),
            ],
        )?;
        Ok(self.get(q, url).await)
    }

    /// `GET /api/traces/{id}` (JSON).
    pub async fn trace(&self, id: &str) -> Result<Exchange, QueryError> {
        let url = join(&self.endpoints.tempo_query, &format!("api/traces/{id}"))?;
        Ok(self.get(&format!("trace id {id}"), url).await)
    }

    /// `GET /api/search` with TraceQL `q`.
    pub async fn traceql(&self, q: &str) -> Result<Exchange, QueryError> {
        let url = Self::with_query(
            join(&self.endpoints.tempo_query, "api/search"),
            &[("q", q.to_string()), ("limit", "50".into())],
        )?;
        Ok(self.get(q, url).await)
    }

    /// `GET /api/search` with logfmt `tags`.
    pub async fn tag_search(&self, tags: &str) -> Result<Exchange, QueryError> {
        let url = Self::with_query(
            join(&self.endpoints.tempo_query, "api/search"),
            &[("tags", tags.to_string()), ("limit", "50".into())],
        )?;
        Ok(self.get(&format!("tags {tags}"), url).await)
    }

    /// `GET {base origin}/ready` (`base` is a backend's query URL; Mimir's `/ready` is at the
    /// root, beside `/prometheus`).
    pub async fn ready(&self, base: &Url) -> Result<Exchange, QueryError> {
        let url = join(base, "/")?;
        let url = url.join("/ready").map_err(|e| QueryError::Url {
            base: base.to_string(),
            path: "/ready".into(),
            reason: e.to_string(),
        })?;
        Ok(self.get("", url).await)
    }

    /// Readiness of the metrics backend at query URL `base`: Mimir's `GET {origin}/ready`, or,
    /// where that is 404 (the backend is Prometheus, which the harness supports as well),
    /// Prometheus' `GET {base}/-/ready`.
    pub async fn ready_metrics(&self, base: &Url) -> Result<Exchange, QueryError> {
        let mimir = self.ready(base).await?;
        if mimir.status != 404 {
            return Ok(mimir);
        }
        let url = join(base, "-/ready")?;
        Ok(self.get("", url).await)
    }

    /// A Grafana API path (basic auth admin/admin unless `GRAFANA_USER`/`GRAFANA_PASSWORD`).
    pub async fn grafana(&self, path: &str) -> Result<Option<Exchange>, QueryError> {
        let Some(base) = &self.endpoints.grafana else {
            return Ok(None);
        };
        let url = join(base, path)?;
        let user = std::env::var("GRAFANA_USER").unwrap_or_else(|_| "admin".into());
        let password = std::env::var("GRAFANA_PASSWORD").unwrap_or_else(|_| "admin".into());
        let mut ex = Exchange {
            method: "GET".into(),
            url: url.to_string(),
            ..Exchange::default()
        };
        match self
            .http
            .get(url)
            .basic_auth(user, Some(password))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) => {
                ex.status = r.status().as_u16();
                ex.body = r.text().await.unwrap_or_else(|e| e.to_string());
            }
            Err(e) => ex.body = chain(&e.without_url()),
        }
        Ok(Some(ex))
    }
}

/// An error with its causes ("error sending request: ...: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

/// A plain GET (collector self-monitoring, device exporters): never fails, see [`Api::get`].
pub async fn get_plain(url: &str) -> Exchange {
    let mut ex = Exchange {
        method: "GET".into(),
        url: url.to_string(),
        ..Exchange::default()
    };
    match stack::client::shared_http_client()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            ex.status = r.status().as_u16();
            ex.body = r.text().await.unwrap_or_else(|e| e.to_string());
        }
        Err(e) => ex.body = chain(&e.without_url()),
    }
    ex
}

/// The label object at `key` of one result (`stream` for Loki, `metric` for Prometheus).
fn labels_at(result: &Value, key: &str) -> serde_json::Map<String, Value> {
    result
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}
