//! Tasks: units of warehouse work (receiving, picking, packing, shipping, returns, stock
//! counts), each one Automerge task document that scanners sync. Managers create them;
//! scanners list the open tasks of their site.

pub mod documents;
pub mod routes;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use swt_domain::doc::{
    CONTINUED_IN_REF, Expected, ExpectedLine, ExpectedUnit, Header, TaskDocument, TaskKind,
    TaskStatus,
};
use swt_domain::gs1::Gtin;

use crate::auth::{Principal, Role};
use crate::db::entity::{site, task_document};
use crate::http::page::Page;
use documents::NewDocument;

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The request is not valid; the message says which field and why.
    #[error("{0}")]
    Invalid(String),
    /// A list cursor this server did not make.
    #[error(transparent)]
    BadCursor(#[from] crate::http::page::BadCursor),
    /// No such task (or not the caller's).
    #[error("task {0} not found")]
    NotFound(String),
    /// The task has ended already (closed, cancelled or continued) in another way.
    #[error("task {0} is {1} already")]
    NotOpen(String, String),
    /// Others kept changing the document; try again.
    #[error("task {0} is busy; retry")]
    Busy(String),
    /// The stored document does not load.
    #[error("task document {0} is damaged: {1}")]
    Damaged(String, String),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// One expected line of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    /// GTIN (8, 12, 13 or 14 digits; stored as GTIN-14).
    pub gtin: String,
    /// Number of packs.
    pub quantity: u64,
    /// Required lot, if any.
    #[serde(default)]
    pub lot: Option<String>,
}

/// One known unit or container of a task, with its parent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    /// `sscc:<18 digits>` or `sgtin:<gtin14>:<serial>`.
    pub id: String,
    /// Its parent container's id, if any.
    #[serde(default)]
    pub parent: Option<String>,
}

/// What should be scanned.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedInput {
    /// Quantity lines.
    #[serde(default)]
    pub lines: Vec<LineInput>,
    /// Known units and containers (ASN hierarchy).
    #[serde(default)]
    pub units: Vec<UnitInput>,
}

/// A request to create a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// `receiving`, `picking`, `packing`, `shipping`, `returns` or `stock_count`.
    pub kind: String,
    /// The site (id or GLN) where the work happens.
    pub site: String,
    /// A short title for lists ("PO 4500012345", "Order 7781").
    #[serde(default)]
    pub title: Option<String>,
    /// Business references: `po`, `asn`, `order`, `shipment`, `destination_gln`, …
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
    /// What should be scanned.
    #[serde(default)]
    pub expected: ExpectedInput,
}

pub use swt_domain::api::TaskSummary;

/// The columns of a task a list reads (everything but the document).
#[derive(Debug, Clone, sea_orm::FromQueryResult)]
struct TaskRow {
    id: String,
    kind: String,
    site_id: String,
    status: String,
    title: String,
    scan_count: i32,
    version: i64,
    projection_pending: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Times as chrono serialises them (RFC 3339, UTC, `Z`), so the list keeps its format.
fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl From<TaskRow> for TaskSummary {
    fn from(r: TaskRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            site_id: r.site_id,
            status: r.status,
            title: r.title,
            scan_count: i64::from(r.scan_count),
            version: r.version,
            projection_pending: r.projection_pending,
            created_at: rfc3339(&r.created_at),
            updated_at: rfc3339(&r.updated_at),
        }
    }
}

/// A task row as lists show it.
pub fn summary(m: &task_document::Model) -> TaskSummary {
    TaskSummary {
        id: m.id.clone(),
        kind: m.kind.clone(),
        site_id: m.site_id.clone(),
        status: m.status.clone(),
        title: m.title.clone(),
        scan_count: i64::from(m.scan_count),
        version: m.version,
        projection_pending: m.needs_projection,
        created_at: rfc3339(&m.created_at),
        updated_at: rfc3339(&m.updated_at),
    }
}

fn check_unit_id(id: &str) -> Result<(), String> {
    swt_domain::unit::UnitKey::parse_key(id)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks a create request and turns it into the document's header and expected sections.
pub fn validate(req: &CreateTask, site_id: &str) -> Result<(Header, Expected), TaskError> {
    let kind = TaskKind::parse(&req.kind).ok_or_else(|| {
        TaskError::Invalid(format!(
            "kind {:?}: expected receiving, picking, packing, shipping, returns or stock_count",
            req.kind
        ))
    })?;
    let mut lines = Vec::with_capacity(req.expected.lines.len());
    for (i, line) in req.expected.lines.iter().enumerate() {
        let gtin = Gtin::parse(&line.gtin)
            .map_err(|e| TaskError::Invalid(format!("expected.lines[{i}].gtin: {e}")))?;
        if line.quantity == 0 {
            return Err(TaskError::Invalid(format!(
                "expected.lines[{i}].quantity must be at least 1"
            )));
        }
        lines.push(ExpectedLine {
            gtin,
            quantity: line.quantity,
            lot: line.lot.clone().filter(|l| !l.is_empty()),
        });
    }
    let mut units = Vec::with_capacity(req.expected.units.len());
    let known: std::collections::HashSet<&str> =
        req.expected.units.iter().map(|u| u.id.as_str()).collect();
    for (i, unit) in req.expected.units.iter().enumerate() {
        check_unit_id(&unit.id)
            .map_err(|e| TaskError::Invalid(format!("expected.units[{i}].id: {e}")))?;
        if let Some(parent) = unit.parent.as_ref().filter(|p| !known.contains(p.as_str())) {
            return Err(TaskError::Invalid(format!(
                "expected.units[{i}].parent {parent} is not one of the units"
            )));
        }
        units.push(ExpectedUnit {
            id: unit.id.clone(),
            parent: unit.parent.clone(),
        });
    }
    Ok((
        Header {
            kind,
            site: site_id.to_owned(),
            refs: req.refs.clone(),
            status: TaskStatus::Open,
        },
        Expected { lines, units },
    ))
}

/// Creates a task and its document. Managers and admins only.
pub async fn create(
    db: &DatabaseConnection,
    server_actor: &automerge::ActorId,
    principal: &Principal,
    req: &CreateTask,
) -> Result<TaskSummary, TaskError> {
    let id = uuid::Uuid::now_v7().to_string();
    create_at(db, server_actor, principal, req, &id, Utc::now())
        .await?
        .ok_or_else(|| TaskError::Invalid(format!("task {id} exists")))
}

/// [`create`] under a given id and creation time; `None` if a task with that id exists.
/// For the demo seed, which must be idempotent (fixed ids) and tell a few weeks' history,
/// and for orders, which create their task in their own transaction.
pub async fn create_at<C: ConnectionTrait>(
    db: &C,
    server_actor: &automerge::ActorId,
    principal: &Principal,
    req: &CreateTask,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<TaskSummary>, TaskError> {
    let site = site::Entity::find()
        .filter(site::Column::OrganisationId.eq(principal.org_id.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(site::Column::Id.eq(req.site.as_str()))
                .add(site::Column::Gln.eq(req.site.as_str())),
        )
        .one(db)
        .await?
        .ok_or_else(|| TaskError::Invalid(format!("site {} is not one of yours", req.site)))?;
    let (header, expected) = validate(req, &site.id)?;
    let title = req.title.clone().unwrap_or_else(|| {
        req.refs
            .iter()
            .next()
            .map_or_else(|| format!("{} task", req.kind), |(k, v)| format!("{k} {v}"))
    });
    let new = NewDocument {
        id: id.to_owned(),
        organisation_id: &principal.org_id,
        site_id: &site.id,
        title,
        created_by: &principal.user_id,
    };
    let inserted = insert_document(db, server_actor, &new, &header, &expected, at).await?;
    Ok(inserted.as_ref().map(summary))
}

/// Builds a new task's document and writes it; `None` if one with that id exists
/// already.
async fn insert_document<C: ConnectionTrait>(
    db: &C,
    server_actor: &automerge::ActorId,
    new: &NewDocument<'_>,
    header: &Header,
    expected: &Expected,
    now: DateTime<Utc>,
) -> Result<Option<task_document::Model>, TaskError> {
    let mut doc = TaskDocument::create(server_actor.clone(), header, now.timestamp())
        .map_err(|e| TaskError::Invalid(e.to_string()))?;
    doc.set_expected(expected, now.timestamp())
        .map_err(|e| TaskError::Invalid(e.to_string()))?;
    Ok(documents::insert(db, new, header, &mut doc, now).await?)
}

/// The business reference a follow-on task carries: the id of the task it continues.
pub const CONTINUES_REF: &str = "continues";

/// Scans after which a document gets its follow-on: early enough that every scanner of
/// the task has it before the document is full.
pub const FOLLOW_ON_AT: usize = swt_domain::doc::limits::MAX_SCANS * 9 / 10;

/// The follow-on of a task whose document nears [`swt_domain::doc::limits::MAX_SCANS`]:
/// the same kind, site, references and expected content, plus `continues` = the full
/// task's id. Its id is derived from the full task's, so concurrent syncs (and several
/// server processes) create it once. Scanners see it in their task list and record
/// there once the first document is full. Returns whether it was created now.
pub async fn ensure_follow_on(
    db: &DatabaseConnection,
    docs: &documents::DocumentCache,
    server_actor: &automerge::ActorId,
    full: &task_document::Model,
    header: &Header,
    expected: &Expected,
) -> Result<bool, TaskError> {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("swt-follow-on:{}", full.id));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Uuid::from_bytes(bytes).to_string();
    let mut header = header.clone();
    header
        .refs
        .insert(CONTINUES_REF.to_owned(), full.id.clone());
    header.status = swt_domain::doc::TaskStatus::Open;
    let new = NewDocument {
        id,
        organisation_id: &full.organisation_id,
        site_id: &full.site_id,
        title: format!("{} (continued)", full.title),
        created_by: &full.created_by,
    };
    let created = insert_document(db, server_actor, &new, &header, expected, Utc::now())
        .await?
        .is_some();
    // The full task names its follow-on, so a device working on it (and holding only the
    // tasks it works on) can open the follow-on without the site's documents.
    let follow_on = new.id.clone();
    change_document(
        db,
        docs,
        server_actor,
        &full.id,
        move |doc, now| {
            if doc.header()?.refs.get(CONTINUED_IN_REF) == Some(&follow_on) {
                return Ok(false);
            }
            doc.set_ref(CONTINUED_IN_REF, &follow_on, now)
                .map(|()| true)
        },
        None,
    )
    .await?;
    Ok(created)
}

/// Filters for listing tasks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFilter {
    /// Only this site.
    pub site_id: Option<String>,
    /// Only this status (default: `open`; `any` for all).
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Page size (default 100, at most 500).
    pub limit: Option<u64>,
    /// The previous page's next cursor (response header `x-next-cursor`).
    pub cursor: Option<String>,
}

/// Lists tasks the caller may see, newest first, one page: all sites for managers and
/// admins, the caller's own site for scanner users. Task ids are UUIDv7, so id order is
/// creation order and the last id listed is where the next page starts.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &TaskFilter,
) -> Result<Page<TaskSummary>, TaskError> {
    let n = crate::http::page::limit(filter.limit, 100);
    let mut q = task_document::Entity::find()
        .filter(task_document::Column::OrganisationId.eq(principal.org_id.as_str()));
    if !principal.sees_all_sites() {
        let own = principal.site_id.clone().unwrap_or_default();
        q = q.filter(task_document::Column::SiteId.eq(own));
    }
    if let Some(site) = &filter.site_id {
        q = q.filter(task_document::Column::SiteId.eq(site.as_str()));
    }
    match filter.status.as_deref() {
        Some("any") => {}
        Some(s) => q = q.filter(task_document::Column::Status.eq(s)),
        None => q = q.filter(task_document::Column::Status.eq("open")),
    }
    if let Some(kind) = &filter.kind {
        q = q.filter(task_document::Column::Kind.eq(kind.as_str()));
    }
    if let Some(c) = &filter.cursor {
        let last: String = crate::http::page::decode(c)?;
        q = q.filter(task_document::Column::Id.lt(last));
    }
    let rows = q
        .select_only()
        // Everything but the document bytes, which a list does not need.
        .columns([
            task_document::Column::Id,
            task_document::Column::Kind,
            task_document::Column::SiteId,
            task_document::Column::Status,
            task_document::Column::Title,
            task_document::Column::ScanCount,
            task_document::Column::Version,
            task_document::Column::CreatedAt,
            task_document::Column::UpdatedAt,
        ])
        .column_as(task_document::Column::NeedsProjection, "projection_pending")
        .order_by_desc(task_document::Column::Id)
        .limit(n + 1)
        .into_model::<TaskRow>()
        .all(db)
        .await?;
    let rows: Vec<TaskSummary> = rows.into_iter().map(TaskSummary::from).collect();
    Ok(Page::from_rows(rows, n, |t: &TaskSummary| t.id.clone()))
}

/// Finds a task the caller may see (else `NotFound`, never "forbidden").
pub async fn find_visible(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
) -> Result<task_document::Model, TaskError> {
    let row = task_document::Entity::find_by_id(id)
        .filter(task_document::Column::OrganisationId.eq(principal.org_id.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| TaskError::NotFound(id.to_owned()))?;
    if !principal.sees_all_sites() && principal.site_id.as_deref() != Some(row.site_id.as_str()) {
        return Err(TaskError::NotFound(id.to_owned()));
    }
    Ok(row)
}

/// The header references of a stored task (order, PO, customer…), read from its document.
/// `None` when the task does not exist.
pub async fn header_refs(
    db: &DatabaseConnection,
    actor: automerge::ActorId,
    id: &str,
) -> Result<Option<BTreeMap<String, String>>, TaskError> {
    let bytes = match documents::read(db, id).await {
        Ok(Some((_, bytes))) => bytes,
        Ok(None) => return Ok(None),
        Err(documents::DocumentError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(TaskError::Damaged(id.to_owned(), e.to_string())),
    };
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let damaged = |e: swt_domain::doc::DocError| TaskError::Damaged(id.clone(), e.to_string());
        let doc = TaskDocument::load(&bytes, actor).map_err(damaged)?;
        Ok(Some(doc.header().map_err(damaged)?.refs))
    })
    .await
    .map_err(|e| TaskError::Damaged(String::new(), e.to_string()))?
}

/// Roles that may create tasks.
pub const CREATORS: &[Role] = &[Role::Manager, Role::Admin];

/// `POST /tasks/{id}/status`: how a manager ends a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EndTask {
    /// `closed` (the work is done) or `cancelled` (it will not be done).
    pub status: String,
}

/// Ends an open task: the server writes the new status into the document's header (so
/// every scanner learns it with its next sync, stops taking scans for it and lets it
/// leave the device) and into the task's row. Asking again for the status the task has
/// already is answered with the task unchanged; asking to end a task that ended
/// otherwise is refused ([`TaskError::NotOpen`]). Scans recorded offline before the
/// scanner learned of it still sync and are kept.
pub async fn end(
    db: &DatabaseConnection,
    docs: &documents::DocumentCache,
    actor: &automerge::ActorId,
    principal: &Principal,
    id: &str,
    req: &EndTask,
) -> Result<TaskSummary, TaskError> {
    let status = match TaskStatus::parse(&req.status) {
        Some(s @ (TaskStatus::Closed | TaskStatus::Cancelled)) => s,
        _ => {
            return Err(TaskError::Invalid(format!(
                "status {:?}: expected closed or cancelled",
                req.status
            )));
        }
    };
    let row = find_visible(db, principal, id).await?;
    if row.status == status.as_str() {
        return Ok(summary(&row));
    }
    if row.status != TaskStatus::Open.as_str() {
        return Err(TaskError::NotOpen(id.to_owned(), row.status));
    }
    change_document(
        db,
        docs,
        actor,
        id,
        move |doc, now| doc.set_status(status, now).map(|()| true),
        Some(status),
    )
    .await?;
    let row = find_visible(db, principal, id).await?;
    Ok(summary(&row))
}

/// Changes a stored document's server sections as the server actor: `change` runs on the
/// current version (again if a scanner merged in between) and says whether it changed
/// anything; `status`, if given, goes into the row with the change.
pub(crate) async fn change_document<F>(
    db: &DatabaseConnection,
    docs: &documents::DocumentCache,
    actor: &automerge::ActorId,
    id: &str,
    change: F,
    status: Option<TaskStatus>,
) -> Result<(), TaskError>
where
    F: Fn(&mut TaskDocument, i64) -> Result<bool, swt_domain::doc::DocError>
        + Clone
        + Send
        + 'static,
{
    let damaged = |e: String| TaskError::Damaged(id.to_owned(), e);
    let mut lock = docs.lock(id).await;
    for _ in 0..8 {
        let Some(head) = documents::head(db, id).await? else {
            return Err(TaskError::NotFound(id.to_owned()));
        };
        let (stored, doc) = match lock.get(db, id, head.version, actor).await {
            Ok(Some(got)) => got,
            Ok(None) => return Err(TaskError::NotFound(id.to_owned())),
            Err(documents::DocumentError::Db(e)) => return Err(e.into()),
            Err(e) => return Err(damaged(e.to_string())),
        };
        let now = Utc::now().timestamp();
        let change = change.clone();
        let (doc, persist) = tokio::task::spawn_blocking(move || {
            let mut doc = doc;
            let before = doc.heads();
            let persist = change(&mut doc, now)
                .map(|changed| changed.then(|| documents::Persist::of(&mut doc, &before, stored)));
            (doc, persist)
        })
        .await
        .map_err(|e| damaged(e.to_string()))?;
        let Some(persist) = persist.map_err(|e| damaged(e.to_string()))? else {
            lock.keep(stored, doc);
            return Ok(());
        };
        let turn = crate::db::Policy::of(db)
            .write_turn(crate::db::Writer::Background)
            .await;
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        let written = documents::write(&txn, id, stored, persist, |u| match status {
            Some(status) => u.col_expr(
                task_document::Column::Status,
                sea_orm::sea_query::Expr::value(status.as_str()),
            ),
            None => u,
        })
        .await?;
        let Some(now_stored) = written else {
            // A scanner merged in between: change the new version.
            txn.rollback().await?;
            continue;
        };
        txn.commit().await?;
        drop(turn);
        lock.keep(now_stored, doc);
        return Ok(());
    }
    Err(TaskError::Busy(id.to_owned()))
}
