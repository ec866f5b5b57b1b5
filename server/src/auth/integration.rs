//! Integration accounts: how an ERP calls swt. Each has its own key (shown once at
//! creation, stored as its SHA-256 like refresh tokens), belongs to one organisation and
//! holds the role [`Role::Integration`], which only the order and stock routes accept.
//! The ERP sends the key itself as the bearer credential (`Authorization: Bearer swti_…`): no
//! sign-in, no refresh dance, and every request looks the key up, so revoking an account
//! refuses its next request on every server process at once (one indexed read per
//! request; ERPs send orders, not scans).
//!
//! People's routes take [`Principal`] from an access token, which an integration key is
//! not: the key opens the order routes, the stock routes and the outcome routes (feed,
//! webhooks; [`ErpOrManager`] and [`ErpOrAdmin`], which people of those roles share)
//! and nothing else.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{AuthError, hash_token, new_secret};
use super::{Principal, Role};
use crate::db::entity::integration_account;
use crate::http::ApiError;
use crate::state::AppState;

/// What every integration key starts with, so a leaked one is recognisable in a log or a
/// secret scanner, and told apart from an access token without decoding it.
pub const KEY_PREFIX: &str = "swti_";

/// An integration account as admins see it (never its key or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationView {
    /// Account id (tasks it creates name it as their creator).
    pub id: String,
    /// A name people recognise ("SAP production").
    pub name: String,
    /// When it was made, RFC 3339.
    pub created_at: String,
    /// When it was revoked, RFC 3339; absent while it is usable.
    pub revoked_at: Option<String>,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl From<&integration_account::Model> for IntegrationView {
    fn from(m: &integration_account::Model) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            created_at: rfc3339(&m.created_at),
            revoked_at: m.revoked_at.as_ref().map(rfc3339),
        }
    }
}

/// An account just made, with its key (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewIntegration {
    /// The account.
    #[serde(flatten)]
    pub account: IntegrationView,
    /// Its key: give it to the ERP now, it cannot be shown again.
    pub key: String,
}

/// Makes an integration account of `org_id` with a fresh key. `created_by`: the admin's
/// user id, or `cli`.
pub async fn add(
    db: &DatabaseConnection,
    org_id: &str,
    name: &str,
    created_by: &str,
) -> Result<NewIntegration, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "name must be 1 to 200 printable characters".into(),
        ));
    }
    let key = format!("{KEY_PREFIX}{}", new_secret()?);
    let model = integration_account::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(org_id.to_owned()),
        name: Set(name.to_owned()),
        key_hash: Set(hash_token(&key)),
        created_by: Set(created_by.to_owned()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    };
    let row = integration_account::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    Ok(NewIntegration {
        account: IntegrationView::from(&row),
        key,
    })
}

/// The integration accounts of `org_id`, oldest first, revoked ones included.
pub async fn list(
    db: &DatabaseConnection,
    org_id: &str,
) -> Result<Vec<IntegrationView>, AuthError> {
    Ok(integration_account::Entity::find()
        .filter(integration_account::Column::OrganisationId.eq(org_id))
        .order_by_asc(integration_account::Column::Id)
        .all(db)
        .await?
        .iter()
        .map(IntegrationView::from)
        .collect())
}

/// Revokes an account of `org_id`: its next request is refused, on every process. Kept,
/// not deleted (the tasks it made name it). Revoking again changes nothing.
pub async fn revoke(
    db: &DatabaseConnection,
    org_id: &str,
    id: &str,
) -> Result<IntegrationView, AuthError> {
    integration_account::Entity::update_many()
        .col_expr(
            integration_account::Column::RevokedAt,
            Expr::value(Utc::now()),
        )
        .filter(integration_account::Column::Id.eq(id))
        .filter(integration_account::Column::OrganisationId.eq(org_id))
        .filter(integration_account::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    integration_account::Entity::find_by_id(id)
        .filter(integration_account::Column::OrganisationId.eq(org_id))
        .one(db)
        .await?
        .map(|m| IntegrationView::from(&m))
        .ok_or_else(|| AuthError::NotFound(format!("integration account {id}")))
}

/// The caller a key names, or `None` if no usable account has it (unknown or revoked:
/// deliberately not saying which).
pub async fn principal_of_key(
    db: &DatabaseConnection,
    key: &str,
) -> Result<Option<Principal>, AuthError> {
    let row = integration_account::Entity::find()
        .filter(integration_account::Column::KeyHash.eq(hash_token(key)))
        .one(db)
        .await?;
    Ok(row
        .filter(|a| a.revoked_at.is_none())
        .map(|a| principal(&a.id, &a.organisation_id)))
}

/// The caller an integration account (or a local tool acting with the database's
/// authority, under a name of its own such as `cli`) is: its organisation, no site.
pub fn principal(account: &str, org_id: &str) -> Principal {
    Principal {
        user_id: account.to_owned(),
        org_id: org_id.to_owned(),
        site_id: None,
        role: Role::Integration,
        device_id: None,
        actor_id: None,
    }
}

/// The bearer credential of a request, if it sends one.
fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The integration account of `key`, or 401 `invalid_integration_key`.
async fn account(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    principal_of_key(&state.db, key).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_integration_key",
            "the integration key is unknown or revoked",
        )
    })
}

/// The caller of an order route: an integration account, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationCaller(pub Principal);

impl FromRequestParts<AppState> for IntegrationCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(key) if key.starts_with(KEY_PREFIX) => Ok(Self(account(state, key).await?)),
            // A person's token: valid or not, people do not send orders.
            Some(_) => {
                let person = Principal::from_request_parts(parts, state).await?;
                person.require(&[Role::Integration])?;
                Ok(Self(person))
            }
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the integration key: Authorization: Bearer swti_…",
            )),
        }
    }
}

/// The caller of a route both an ERP and people use (stock, outcomes): an integration
/// account by its key, or a signed-in person with one of `roles`; other roles get 403.
async fn erp_or_person(
    parts: &mut Parts,
    state: &AppState,
    roles: &[Role],
) -> Result<Principal, ApiError> {
    if let Some(key) = bearer(parts).filter(|k| k.starts_with(KEY_PREFIX)) {
        return account(state, key).await;
    }
    let person = Principal::from_request_parts(parts, state).await?;
    person.require(roles)?;
    Ok(person)
}

/// An integration account, or a manager or admin (stock; watching and replaying
/// deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpOrManager(pub Principal);

impl FromRequestParts<AppState> for ErpOrManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        erp_or_person(parts, state, &[Role::Manager, Role::Admin])
            .await
            .map(Self)
    }
}

/// An integration account, or an admin (setting up where outcomes go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpOrAdmin(pub Principal);

impl FromRequestParts<AppState> for ErpOrAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        erp_or_person(parts, state, &[Role::Admin]).await.map(Self)
    }
}

/// The integration account routes (admins), nested under `/api/v1`.
pub fn documented_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_accounts, add_account))
        .routes(routes!(revoke_account))
}

/// A new integration account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddAccount {
    /// A name people recognise ("SAP production").
    name: String,
}

/// The organisation's integration accounts, revoked ones included (admins).
#[utoipa::path(get, path = "/integrations", tag = "integrations",
    responses((status = 200, body = Vec<IntegrationView>), (status = 403, description = "role")))]
async fn list_accounts(
    axum::extract::State(state): axum::extract::State<AppState>,
    principal: Principal,
) -> Result<axum::Json<Vec<IntegrationView>>, ApiError> {
    principal.require(&[Role::Admin])?;
    Ok(axum::Json(list(&state.db, &principal.org_id).await?))
}

/// Makes an integration account for an ERP (admins). The answer holds its key, shown this
/// once: the ERP sends it as `Authorization: Bearer swti_…` to the order routes.
#[utoipa::path(post, path = "/integrations", tag = "integrations", request_body = AddAccount,
    responses((status = 201, body = NewIntegration), (status = 400, description = "invalid_request: name"),
        (status = 403, description = "role")))]
async fn add_account(
    axum::extract::State(state): axum::extract::State<AppState>,
    principal: Principal,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<NewIntegration>), ApiError> {
    principal.require(&[Role::Admin])?;
    let req: AddAccount = crate::http::json_body(&body)?;
    let made = add(&state.db, &principal.org_id, &req.name, &principal.user_id).await?;
    tracing::info!(account = %made.account.id, by = %principal.user_id, "integration account made");
    Ok((StatusCode::CREATED, axum::Json(made)))
}

/// Revokes an integration account (admins): its key is refused from its next request on,
/// by every server process.
#[utoipa::path(post, path = "/integrations/{id}/revoke", tag = "integrations",
    params(("id" = String, Path, description = "integration account id")),
    responses((status = 200, body = IntegrationView), (status = 403, description = "role"),
        (status = 404, description = "no such account in this organisation")))]
async fn revoke_account(
    axum::extract::State(state): axum::extract::State<AppState>,
    principal: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<IntegrationView>, ApiError> {
    principal.require(&[Role::Admin])?;
    let view = revoke(&state.db, &principal.org_id, &id).await?;
    tracing::info!(account = %id, by = %principal.user_id, "integration account revoked");
    Ok(axum::Json(view))
}
