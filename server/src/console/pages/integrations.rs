//! Integrations: where outcomes go (webhook subscriptions), how far delivery got, why it
//! fails, and a replay for a stopped one.

use super::*;
use crate::outbox::webhooks;

/// Webhook subscriptions with their delivery state, and the newest outcomes.
pub async fn integrations(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let subscriptions = webhooks::list(&state.db, org).await?;
    let recent = crate::outbox::newest(&state.db, org, 20).await?;
    html(&IntegrationsPage {
        chrome: chrome(&state, &user, &csrf, "/integrations").await?,
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        subscriptions: subscriptions
            .into_iter()
            .map(|s| SubscriptionRow {
                types: if s.types.is_empty() {
                    "all".to_owned()
                } else {
                    s.types.join(", ")
                },
                last_delivered: s
                    .last_delivered_at
                    .as_deref()
                    .map(when_text)
                    .unwrap_or_default(),
                next_attempt: s
                    .next_attempt_at
                    .as_deref()
                    .map(when_text)
                    .unwrap_or_default(),
                last_error: s.last_error.unwrap_or_default(),
                id: s.id,
                url: s.url,
                state: s.state,
                delivered_seq: s.delivered_seq,
                pending: s.pending,
                attempts: s.attempts,
            })
            .collect(),
        recent: recent
            .into_iter()
            .map(|e| OutcomeRow {
                seq: e.seq,
                kind: e.kind,
                at: when_text(&e.occurred_at),
                stream: e.stream,
            })
            .collect(),
    })
}

/// Restarts a subscription's delivery from where it stopped (managers, admins).
pub async fn replay_webhook(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    user.principal.require(&[Role::Manager, Role::Admin])?;
    let view = webhooks::replay(
        &state.db,
        &user.principal.org_id,
        &id,
        &webhooks::Replay::default(),
    )
    .await?;
    state.outbox_wake.notify_one();
    tracing::info!(subscription = %view.id, by = %user.principal.user_id, "webhook delivery replayed in the console");
    Ok(with_notice(
        "/integrations",
        &format!(
            "Delivery to {} starts again after event {}.",
            view.url, view.delivered_seq
        ),
    ))
}
