//! Webhooks: each subscription receives its organisation's outcomes, in `seq` order, as
//! signed JSON batches, at least once.
//!
//! - **Order.** A subscription has one delivery in flight at a time (a lease on its row
//!   when several processes run), and moves its cursor (`delivered_seq`) only past a batch
//!   its receiver accepted with a 2xx. Events therefore arrive in `seq` order, which keeps
//!   every task's events in order.
//! - **At least once.** The cursor moves after the receiver's answer: a crash in between
//!   sends the batch again. Receivers de-duplicate by the event `id`.
//! - **Retries.** A failed delivery (no connection, timeout, any non-2xx) is tried again
//!   after 1 s, 2 s, 4 s … up to `max_backoff_ms`; after `max_attempts` failures the
//!   subscription is `dead`: it stops where it is, nothing after the failing batch is
//!   skipped, and a manager sees it (console "Integrations", `GET /webhooks`) and
//!   replays it (`POST /webhooks/{id}/replay`). We stop the subscription rather than
//!   park one event and go on, because a receiver that missed a shipment confirmation
//!   and then got the next task's events would hold wrong stock without knowing.
//! - **Signature.** `Swt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>" under the subscription's secret>`; see `docs/erp.md`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{OutboxEvent, OutcomeKind};
use crate::auth::Principal;
use crate::config::WebhookConfig;
use crate::db::entity::{outbox_event, webhook_subscription};

/// Why a subscription request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such subscription in the caller's organisation.
    #[error("no webhook subscription {0}")]
    NotFound(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Subscription states.
pub const ACTIVE: &str = "active";
/// Failing, will try again at `next_attempt_at`.
pub const RETRYING: &str = "retrying";
/// Stopped after `max_attempts` failures: waits for a replay.
pub const DEAD: &str = "dead";

/// Most subscriptions an organisation may have.
const MAX_SUBSCRIPTIONS: u64 = 20;
/// Longest accepted URL.
const MAX_URL: usize = 2_048;
/// How long a delivery's lease on its subscription lasts beyond one request's time-out
/// (renewed per batch). A process that dies holding it delays that subscription by at
/// most this plus the time-out.
const LEASE_MARGIN_MS: u64 = 5_000;

fn lease_ms(cfg: &WebhookConfig) -> i64 {
    i64::try_from(cfg.timeout_ms.saturating_add(LEASE_MARGIN_MS)).unwrap_or(i64::MAX)
}
/// Batches one delivery turn sends before giving other work a turn.
const BATCHES_PER_TURN: usize = 50;

/// A new subscription.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where to POST: `https://…` (or `http://…` on a private network), no user name or
    /// password in it.
    pub url: String,
    /// Event types to receive; empty or absent: all.
    #[serde(default)]
    pub types: Vec<String>,
}

/// A subscription as shown to its organisation (never with its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    /// Id (`whs_…`).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types sent; empty: all.
    pub types: Vec<String>,
    /// `active`, `retrying` (failing, tries again at `next_attempt_at`) or `dead`
    /// (stopped after too many failures: replay it).
    pub state: String,
    /// Every event up to this `seq` was delivered (or is not of a type sent).
    pub delivered_seq: i64,
    /// Events recorded after `delivered_seq` (all types), not yet delivered.
    pub pending: i64,
    /// Failed attempts since the last success.
    pub attempts: i32,
    /// When the next attempt is due, while retrying.
    pub next_attempt_at: Option<String>,
    /// The last failure: HTTP status or connection error (the receiver's body is not
    /// kept).
    pub last_error: Option<String>,
    /// The last attempt.
    pub last_attempt_at: Option<String>,
    /// The last successful delivery.
    pub last_delivered_at: Option<String>,
    /// Created.
    pub created_at: String,
}

/// The answer to creating a subscription: the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedSubscription {
    /// The subscription.
    pub subscription: SubscriptionView,
    /// The signing secret (`whsec_…`): keep it with the receiver to check signatures.
    pub secret: String,
}

/// Where to restart a subscription's delivery.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// Deliver again from this `seq` on (at least 1, at most the last `seq` + 1);
    /// absent: go on from where delivery stopped.
    pub from_seq: Option<i64>,
}

fn view(m: &webhook_subscription::Model, pending: i64) -> SubscriptionView {
    let t = crate::epcis::format_time_ms;
    SubscriptionView {
        id: m.id.clone(),
        url: m.url.clone(),
        types: split_kinds(&m.kinds),
        state: m.state.clone(),
        delivered_seq: m.delivered_seq,
        pending,
        attempts: m.attempts,
        next_attempt_at: (m.state == RETRYING).then(|| t(m.next_attempt_at_ms)),
        last_error: m.last_error.clone(),
        last_attempt_at: m.last_attempt_at_ms.map(t),
        last_delivered_at: m.last_delivered_at_ms.map(t),
        created_at: t(m.created_at_ms),
    }
}

fn split_kinds(kinds: &str) -> Vec<String> {
    kinds
        .split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a receiver URL: http(s), a host, no credentials or fragment, not too long.
fn check_url(raw: &str) -> Result<String, WebhookError> {
    let bad = |why: &str| WebhookError::Invalid(format!("url {raw:?}: {why}"));
    if raw.len() > MAX_URL {
        return Err(bad("longer than 2048 characters"));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(url.to_string())
}

/// Creates a subscription starting after the newest outcome (older ones: replay or the
/// change feed).
pub async fn add(
    db: &DatabaseConnection,
    caller: &Principal,
    req: &NewSubscription,
) -> Result<CreatedSubscription, WebhookError> {
    let url = check_url(req.url.trim())?;
    let kinds = super::parse_kinds(&req.types.join(",")).map_err(WebhookError::Invalid)?;
    let live = webhook_subscription::Entity::find()
        .filter(webhook_subscription::Column::OrganisationId.eq(caller.org_id.as_str()))
        .filter(webhook_subscription::Column::RemovedAtMs.is_null())
        .count(db)
        .await?;
    if live >= MAX_SUBSCRIPTIONS {
        return Err(WebhookError::Invalid(format!(
            "an organisation has at most {MAX_SUBSCRIPTIONS} webhook subscriptions"
        )));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| WebhookError::Invalid(format!("no randomness: {e}")))?;
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    );
    let now = chrono::Utc::now().timestamp_millis();
    let last = super::last_seq(db).await?;
    let mut kind_names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    kind_names.sort_unstable();
    kind_names.dedup();
    let model = webhook_subscription::Model {
        id: format!("whs_{}", uuid::Uuid::new_v4().simple()),
        organisation_id: caller.org_id.clone(),
        url,
        secret: secret.clone(),
        kinds: kind_names.join(","),
        state: ACTIVE.to_owned(),
        delivered_seq: last,
        attempts: 0,
        next_attempt_at_ms: 0,
        lease_until_ms: 0,
        last_error: None,
        last_attempt_at_ms: None,
        last_delivered_at_ms: None,
        created_by: caller.user_id.clone(),
        created_at_ms: now,
        removed_at_ms: None,
    };
    webhook_subscription::Entity::insert(webhook_subscription::ActiveModel::from(model.clone()))
        .exec_without_returning(db)
        .await?;
    Ok(CreatedSubscription {
        subscription: view(&model, 0),
        secret,
    })
}

/// The organisation's live subscriptions.
pub async fn list(db: &DatabaseConnection, org: &str) -> Result<Vec<SubscriptionView>, DbErr> {
    let subs = webhook_subscription::Entity::find()
        .filter(webhook_subscription::Column::OrganisationId.eq(org))
        .filter(webhook_subscription::Column::RemovedAtMs.is_null())
        .order_by_asc(webhook_subscription::Column::CreatedAtMs)
        .all(db)
        .await?;
    let mut views = Vec::with_capacity(subs.len());
    for m in &subs {
        views.push(view(m, pending(db, m).await?));
    }
    Ok(views)
}

/// The organisation's numbered events after the subscription's cursor (a range of the
/// `(organisation, seq)` index).
async fn pending(db: &DatabaseConnection, m: &webhook_subscription::Model) -> Result<i64, DbErr> {
    let n = outbox_event::Entity::find()
        .filter(outbox_event::Column::OrganisationId.eq(m.organisation_id.as_str()))
        .filter(outbox_event::Column::Seq.gt(m.delivered_seq))
        .count(db)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

async fn find(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
) -> Result<webhook_subscription::Model, WebhookError> {
    webhook_subscription::Entity::find_by_id(id)
        .filter(webhook_subscription::Column::OrganisationId.eq(org))
        .filter(webhook_subscription::Column::RemovedAtMs.is_null())
        .one(db)
        .await?
        .ok_or_else(|| WebhookError::NotFound(id.to_owned()))
}

/// Removes a subscription: nothing more is sent to it (kept, for the record).
pub async fn remove(db: &DatabaseConnection, org: &str, id: &str) -> Result<(), WebhookError> {
    find(db, org, id).await?;
    webhook_subscription::Entity::update_many()
        .col_expr(
            webhook_subscription::Column::RemovedAtMs,
            Expr::value(chrono::Utc::now().timestamp_millis()),
        )
        .filter(webhook_subscription::Column::Id.eq(id))
        .filter(webhook_subscription::Column::OrganisationId.eq(org))
        .exec(db)
        .await?;
    Ok(())
}

/// Restarts delivery now: from where it stopped, or again from `from_seq`.
pub async fn replay(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    req: &Replay,
) -> Result<SubscriptionView, WebhookError> {
    find(db, org, id).await?;
    let last = super::last_seq(db).await?;
    let mut update = webhook_subscription::Entity::update_many()
        .col_expr(webhook_subscription::Column::State, Expr::value(ACTIVE))
        .col_expr(webhook_subscription::Column::Attempts, Expr::value(0))
        .col_expr(
            webhook_subscription::Column::NextAttemptAtMs,
            Expr::value(0i64),
        );
    if let Some(from) = req.from_seq {
        if from < 1 || from > last.saturating_add(1) {
            return Err(WebhookError::Invalid(format!(
                "from_seq {from}: expected 1 to {}",
                last.saturating_add(1)
            )));
        }
        update = update.col_expr(
            webhook_subscription::Column::DeliveredSeq,
            Expr::value(from - 1),
        );
    }
    update
        .filter(webhook_subscription::Column::Id.eq(id))
        .filter(webhook_subscription::Column::OrganisationId.eq(org))
        .exec(db)
        .await?;
    let row = find(db, org, id).await?;
    Ok(view(&row, pending(db, &row).await?))
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, unix_s: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(unix_s.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={unix_s},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// The body of one delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// The subscription it is for.
    pub subscription: String,
    /// One or more events, in `seq` order.
    pub events: Vec<OutboxEvent>,
}

/// The wait before attempt `attempts + 1`: doubling from `first_backoff_ms`, capped.
fn backoff_ms(cfg: &WebhookConfig, attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
    let ms = cfg
        .first_backoff_ms
        .saturating_mul(1u64 << doublings)
        .min(cfg.max_backoff_ms);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Runs until `stop` is notified: reports completed tasks, numbers new outcomes, and
/// delivers them to every due subscription, each in its own task.
pub async fn run(
    db: DatabaseConnection,
    actor: Arc<automerge::ActorId>,
    cfg: WebhookConfig,
    wake: Arc<tokio::sync::Notify>,
    stop: Arc<tokio::sync::Notify>,
) {
    let client =
        match crate::verification::requester::peer_client(Duration::from_millis(cfg.timeout_ms)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: no HTTP client; nothing will be delivered");
                stop.notified().await;
                return;
            }
        };
    let poll = Duration::from_millis(cfg.poll_ms.max(10));
    let mut in_flight: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        in_flight.retain(|_, h| !h.is_finished());
        if let Err(e) = super::completion::report(&db, &actor).await {
            tracing::warn!(error = %e, "outbox: reporting completed tasks failed; will retry");
        }
        loop {
            match super::sequence(&db).await {
                Ok(n) if u64::try_from(n).unwrap_or(0) >= super::SEQUENCE_BATCH => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: numbering outcomes failed; will retry");
                    break;
                }
            }
        }
        match due(&db).await {
            Ok(subs) => {
                for sub in subs {
                    if in_flight.contains_key(&sub.id) {
                        continue;
                    }
                    let id = sub.id.clone();
                    let (db, client, cfg) = (db.clone(), client.clone(), cfg.clone());
                    in_flight.insert(
                        id,
                        tokio::spawn(async move { deliver(&db, &client, &cfg, sub).await }),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "webhooks: reading subscriptions failed"),
        }
        tokio::select! {
            () = stop.notified() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    for (_, h) in in_flight {
        h.abort();
    }
}

/// Live subscriptions with something to deliver and no delivery running elsewhere.
async fn due(db: &DatabaseConnection) -> Result<Vec<webhook_subscription::Model>, DbErr> {
    let now = chrono::Utc::now().timestamp_millis();
    let last = super::last_seq(db).await?;
    webhook_subscription::Entity::find()
        .filter(webhook_subscription::Column::RemovedAtMs.is_null())
        .filter(webhook_subscription::Column::State.ne(DEAD))
        .filter(webhook_subscription::Column::NextAttemptAtMs.lte(now))
        .filter(webhook_subscription::Column::LeaseUntilMs.lte(now))
        .filter(webhook_subscription::Column::DeliveredSeq.lt(last))
        .all(db)
        .await
}

/// Takes the subscription's lease: `Some(token)` if this process now delivers for it.
async fn lease(db: &DatabaseConnection, id: &str, ms: i64) -> Result<Option<i64>, DbErr> {
    let now = chrono::Utc::now().timestamp_millis();
    let token = now + ms;
    let taken = webhook_subscription::Entity::update_many()
        .col_expr(
            webhook_subscription::Column::LeaseUntilMs,
            Expr::value(token),
        )
        .filter(webhook_subscription::Column::Id.eq(id))
        .filter(webhook_subscription::Column::RemovedAtMs.is_null())
        .filter(webhook_subscription::Column::State.ne(DEAD))
        .filter(webhook_subscription::Column::LeaseUntilMs.lte(now))
        .exec(db)
        .await?;
    Ok((taken.rows_affected == 1).then_some(token))
}

/// Delivers batch after batch until the subscription is caught up, fails, or has had its
/// turn; leaves the outcome in its row.
async fn deliver(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    sub: webhook_subscription::Model,
) {
    if let Err(e) = deliver_turn(db, client, cfg, &sub).await {
        tracing::warn!(subscription = %sub.id, error = %e, "webhook delivery: database error");
    }
}

async fn deliver_turn(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    sub: &webhook_subscription::Model,
) -> Result<(), DbErr> {
    let Some(mut token) = lease(db, &sub.id, lease_ms(cfg)).await? else {
        return Ok(());
    };
    let kinds: Vec<OutcomeKind> = split_kinds(&sub.kinds)
        .iter()
        .filter_map(|k| OutcomeKind::parse(k))
        .collect();
    // The row as leased: its cursor may have moved (a replay) since `due` read it.
    let Some(mut row) = webhook_subscription::Entity::find_by_id(sub.id.as_str())
        .one(db)
        .await?
    else {
        return Ok(());
    };
    let batch = u64::from(cfg.batch.clamp(1, 1_000));
    for _ in 0..BATCHES_PER_TURN {
        // Read before the events: every number up to it is given, so when nothing of
        // this organisation follows the cursor, the cursor may move up to it (other
        // organisations' events then no longer make this subscription look due).
        let numbered = super::last_seq(db).await?;
        let (events, last) =
            super::read(db, &row.organisation_id, row.delivered_seq, batch, &kinds).await?;
        if last == row.delivered_seq {
            if numbered > row.delivered_seq {
                webhook_subscription::Entity::update_many()
                    .col_expr(
                        webhook_subscription::Column::DeliveredSeq,
                        Expr::value(numbered),
                    )
                    .filter(webhook_subscription::Column::Id.eq(row.id.as_str()))
                    .filter(webhook_subscription::Column::LeaseUntilMs.eq(token))
                    .filter(webhook_subscription::Column::DeliveredSeq.eq(row.delivered_seq))
                    .exec(db)
                    .await?;
            }
            break;
        }
        let outcome = if events.is_empty() {
            Ok(())
        } else {
            post(client, &row, events).await
        };
        let now = chrono::Utc::now().timestamp_millis();
        let next_token = now + lease_ms(cfg);
        let base = webhook_subscription::Entity::update_many()
            .col_expr(
                webhook_subscription::Column::LastAttemptAtMs,
                Expr::value(now),
            )
            .filter(webhook_subscription::Column::Id.eq(row.id.as_str()))
            .filter(webhook_subscription::Column::LeaseUntilMs.eq(token));
        match outcome {
            Ok(()) => {
                let done = base
                    .col_expr(
                        webhook_subscription::Column::DeliveredSeq,
                        Expr::value(last),
                    )
                    .col_expr(webhook_subscription::Column::State, Expr::value(ACTIVE))
                    .col_expr(webhook_subscription::Column::Attempts, Expr::value(0))
                    .col_expr(
                        webhook_subscription::Column::LastError,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        webhook_subscription::Column::LastDeliveredAtMs,
                        Expr::value(now),
                    )
                    .col_expr(
                        webhook_subscription::Column::LeaseUntilMs,
                        Expr::value(next_token),
                    )
                    .exec(db)
                    .await?;
                if done.rows_affected != 1 {
                    // The lease was lost (a replay or removal reset it): stop here.
                    return Ok(());
                }
                token = next_token;
                row.delivered_seq = last;
            }
            Err(why) => {
                let attempts = row.attempts.saturating_add(1);
                let state = if u32::try_from(attempts).unwrap_or(u32::MAX) >= cfg.max_attempts {
                    DEAD
                } else {
                    RETRYING
                };
                tracing::warn!(subscription = %row.id, attempts, state, error = %why, "webhook delivery failed");
                base.col_expr(webhook_subscription::Column::State, Expr::value(state))
                    .col_expr(
                        webhook_subscription::Column::Attempts,
                        Expr::value(attempts),
                    )
                    .col_expr(webhook_subscription::Column::LastError, Expr::value(why))
                    .col_expr(
                        webhook_subscription::Column::NextAttemptAtMs,
                        Expr::value(now + backoff_ms(cfg, attempts)),
                    )
                    .col_expr(
                        webhook_subscription::Column::LeaseUntilMs,
                        Expr::value(0i64),
                    )
                    .exec(db)
                    .await?;
                return Ok(());
            }
        }
    }
    webhook_subscription::Entity::update_many()
        .col_expr(
            webhook_subscription::Column::LeaseUntilMs,
            Expr::value(0i64),
        )
        .filter(webhook_subscription::Column::Id.eq(row.id.as_str()))
        .filter(webhook_subscription::Column::LeaseUntilMs.eq(token))
        .exec(db)
        .await?;
    Ok(())
}

/// POSTs one batch; `Err` says why it does not count as delivered.
async fn post(
    client: &reqwest::Client,
    sub: &webhook_subscription::Model,
    events: Vec<OutboxEvent>,
) -> Result<(), String> {
    let body = serde_json::to_vec(&Delivery {
        subscription: sub.id.clone(),
        events,
    })
    .map_err(|e| format!("encoding the batch: {e}"))?;
    let t = chrono::Utc::now().timestamp();
    let resp = client
        .post(&sub.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("swt-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("Swt-Subscription", sub.id.as_str())
        .header("Swt-Signature", signature(&sub.secret, t, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| crate::verification::requester::error_chain(&e))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://erp.example.com/hooks/swt").is_ok());
        assert!(check_url("http://10.0.0.5:8080/in").is_ok());
        for bad in [
            "ftp://erp.example.com/",
            "https://user:pw@erp.example.com/",
            "https://erp.example.com/#x",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(check_url(bad), Err(WebhookError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let cfg = WebhookConfig::default();
        assert_eq!(backoff_ms(&cfg, 1), 1_000);
        assert_eq!(backoff_ms(&cfg, 2), 2_000);
        assert_eq!(backoff_ms(&cfg, 5), 16_000);
        assert_eq!(backoff_ms(&cfg, 12), 300_000);
        assert_eq!(backoff_ms(&cfg, 1_000), 300_000);
    }
}
