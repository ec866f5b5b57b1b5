//! Orders from an ERP become tasks (issue #24, "work in"): a purchase order or ASN a
//! receiving, a sales order a picking, a delivery a shipping. One order, one task: the
//! order is known by `(organisation, kind, order_ref)`, so sending it again changes
//! nothing, and sending it changed rewrites the task's expected lines in the server's
//! section of the document (scanners get them at their next sync) as long as the task is
//! open. An order is checked whole before anything is written: GS1 check digits (the GS1
//! engine of `swt_domain`), the site among the caller's organisation's sites, every GTIN
//! in its product master; a refused order leaves nothing behind.
//!
//! The same code serves the API (`PUT /api/v1/orders/{kind}/{order_ref}`, [`routes`])
//! and the CSV drop (`swt import orders`, [`file`]). See `docs/erp.md`.

pub mod file;
pub mod routes;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait, TryInsertResult, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use swt_domain::doc::{TaskKind, TaskStatus};
use swt_domain::gs1::Gln;
use swt_domain::unit::UnitKey;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::auth::service::hash_token;
use crate::db::entity::{erp_order, erp_order_request, product, site, task_document};
use crate::projection::map::{CUSTOMER_GLN, SUPPLIER_GLN};
use crate::tasks::documents::DocumentCache;
use crate::tasks::{CreateTask, ExpectedInput, LineInput, TaskError, UnitInput};

/// Lines and units of one order at most: a task document holds at most 10,000 scans, so
/// an order expecting more is a job for several orders.
pub const MAX_ENTRIES: usize = 10_000;
/// Longest order reference, reference value or idempotency key.
pub const MAX_REF: usize = 64;
/// References an order may carry besides its own number (which the kind names).
pub const EXTRA_REFS: [&str; 5] = ["po", "asn", "order", "shipment", "invoice"];

/// Where in an order a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The order as a whole (site, partner, references).
    Order,
    /// `lines[i]`.
    Line(usize),
    /// `units[i]`.
    Unit(usize),
}

/// One thing wrong with an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable code: `invalid_order`, `unknown_site` or `unknown_product`.
    pub code: &'static str,
    /// Where.
    pub at: At,
    /// What, for a person.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            At::Order => write!(f, "{}", self.message),
            At::Line(i) => write!(f, "lines[{i}]: {}", self.message),
            At::Unit(i) => write!(f, "units[{i}]: {}", self.message),
        }
    }
}

fn joined(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an order was not applied. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The order is not acceptable; every problem found is listed.
    #[error("{}", joined(.0))]
    Invalid(Vec<Problem>),
    /// The idempotency key was used before with another order.
    #[error(
        "idempotency key {0:?} was used before with another order; use a new key for a new request"
    )]
    KeyReused(String),
    /// The order exists with another site or partner: an update cannot move it.
    #[error("{0}")]
    Conflict(String),
    /// The order's task has ended (closed, cancelled, continued): it cannot change.
    #[error("order {order_ref}: its task {task} is {status}; it can no longer change")]
    NotOpen {
        /// The order.
        order_ref: String,
        /// Its task.
        task: String,
        /// The task's status.
        status: String,
    },
    /// Creating or changing the task failed.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl OrderError {
    /// The stable code of an invalid order: the problems' code if they share one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(p) => match p.first() {
                Some(first) if p.iter().all(|x| x.code == first.code) => first.code,
                _ => "invalid_order",
            },
            Self::KeyReused(_) => "idempotency_key_reused",
            Self::Conflict(_) => "order_conflict",
            Self::NotOpen { .. } => "task_not_open",
            Self::Task(_) | Self::Db(_) => "internal",
        }
    }
}

/// An expected unit of an order: an SSCC (a pallet or case), or a pack by GTIN and
/// serial; either inside a container of the order (`parent_sscc`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderUnit {
    /// 18 digits, check digit verified.
    #[serde(default)]
    pub sscc: Option<String>,
    /// With `serial`: a serialized pack.
    #[serde(default)]
    pub gtin: Option<String>,
    /// The pack's serial (GS1 AI 21).
    #[serde(default)]
    pub serial: Option<String>,
    /// The SSCC of the container it is in, itself a unit of the order.
    #[serde(default)]
    pub parent_sscc: Option<String>,
}

/// An order as an ERP sends it (the kind and number are in the path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// The site's GLN: one of the caller's organisation's sites.
    pub site_gln: String,
    /// The partner's GLN: the supplier of a receiving, the customer of a picking or
    /// shipping.
    pub partner_gln: String,
    /// A short title for lists (default: the order's number).
    #[serde(default)]
    pub title: Option<String>,
    /// Other business references: `po`, `asn`, `order`, `shipment`, `invoice`.
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
    /// Quantity lines: GTIN, quantity, optional lot.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<LineInput>,
    /// Expected SSCCs and serials, with their containers.
    #[serde(default)]
    pub units: Vec<OrderUnit>,
}

/// An order that passed every check, as the task it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Its kind.
    pub kind: TaskKind,
    /// The ERP's number.
    pub order_ref: String,
    /// The site's id.
    pub site_id: String,
    /// The partner's GLN (13 digits).
    pub partner_gln: String,
    /// The task it becomes.
    pub task: CreateTask,
    /// SHA-256 of `task`: what "the same order" means.
    pub hash: String,
}

/// What became of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A task was made from it.
    Created,
    /// Its task's expected lines (or references) were changed.
    Updated,
    /// It was known as it is: nothing changed.
    Unchanged,
}

/// The answer to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderOutcome {
    /// `receiving`, `picking` or `shipping`.
    pub kind: String,
    /// The ERP's number.
    pub order_ref: String,
    /// The task made from it.
    pub task_id: String,
    /// What this request did.
    pub outcome: Outcome,
    /// The task's status.
    pub task_status: String,
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Applied now.
    Done(OrderOutcome),
    /// The idempotency key was seen with this order: the answer given then (HTTP status
    /// and JSON body), again.
    Replay {
        /// The status answered then.
        status: u16,
        /// The body answered then.
        body: String,
    },
}

/// The kinds an order can be, with the reference its number becomes and the reference
/// its partner's GLN becomes (what the EPCIS projection reads).
pub fn kind_refs(kind: TaskKind) -> Option<(&'static str, &'static str)> {
    match kind {
        TaskKind::Receiving => Some(("po", SUPPLIER_GLN)),
        TaskKind::Picking => Some(("order", CUSTOMER_GLN)),
        TaskKind::Shipping => Some(("shipment", CUSTOMER_GLN)),
        _ => None,
    }
}

/// A reference or key: 1 to [`MAX_REF`] printable characters.
pub fn check_ref(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.chars().count() > MAX_REF
        || value.chars().any(|c| c.is_control())
        || value.trim() != value
    {
        return Err(format!(
            "{what} must be 1 to {MAX_REF} printable characters without surrounding spaces"
        ));
    }
    Ok(())
}

/// An optional field with something in it, trimmed.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn gln(what: &str, text: &str) -> Result<Gln, String> {
    Gln::parse(text.trim()).map_err(|e| format!("{what} {text:?}: {e}"))
}

/// Checks an order whole against the GS1 rules and the organisation's sites and product
/// master, and makes it the task it becomes. Every problem is reported, not just the
/// first.
pub async fn check<C: ConnectionTrait>(
    db: &C,
    org: &str,
    kind: &str,
    order_ref: &str,
    input: &OrderInput,
) -> Result<Checked, OrderError> {
    let mut problems = Vec::new();
    let mut bad = |code: &'static str, at: At, message: String| {
        problems.push(Problem { code, at, message });
    };
    let kind_found = TaskKind::parse(kind).and_then(|k| Some((k, kind_refs(k)?)));
    if kind_found.is_none() {
        bad(
            "invalid_order",
            At::Order,
            format!("kind {kind:?}: expected receiving, picking or shipping"),
        );
    }
    if let Err(e) = check_ref("order_ref", order_ref) {
        bad("invalid_order", At::Order, e);
    }
    let site = match gln("site_gln", &input.site_gln) {
        Ok(g) => {
            let found = site::Entity::find()
                .filter(site::Column::OrganisationId.eq(org))
                .filter(site::Column::Gln.eq(g.as_str()))
                .one(db)
                .await?;
            if found.is_none() {
                bad(
                    "unknown_site",
                    At::Order,
                    format!("site_gln {g} is not a site of your organisation"),
                );
            }
            found
        }
        Err(e) => {
            bad("invalid_order", At::Order, e);
            None
        }
    };
    let partner = gln("partner_gln", &input.partner_gln)
        .map_err(|e| bad("invalid_order", At::Order, e))
        .ok();
    if let Some(title) = &input.title
        && (title.trim().is_empty()
            || title.chars().count() > 200
            || title.chars().any(char::is_control))
    {
        bad(
            "invalid_order",
            At::Order,
            "title must be 1 to 200 printable characters".to_owned(),
        );
    }
    let own = kind_found.map(|(_, (own, _))| own);
    for (k, v) in &input.refs {
        if !EXTRA_REFS.contains(&k.as_str()) || Some(k.as_str()) == own {
            bad(
                "invalid_order",
                At::Order,
                format!(
                    "refs.{k}: expected one of {} (the order's own number is in the path)",
                    EXTRA_REFS
                        .iter()
                        .filter(|r| Some(**r) != own)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        } else if let Err(e) = check_ref(&format!("refs.{k}"), v) {
            bad("invalid_order", At::Order, e);
        }
    }
    if input.lines.is_empty() && input.units.is_empty() {
        bad(
            "invalid_order",
            At::Order,
            "an order expects something: give lines or units".to_owned(),
        );
    }
    if input.lines.len() + input.units.len() > MAX_ENTRIES {
        bad(
            "invalid_order",
            At::Order,
            format!("more than {MAX_ENTRIES} lines and units: split the order"),
        );
    }

    // Every GTIN, with where it was named, to look up in the product master once.
    let mut gtins: BTreeMap<String, Vec<At>> = BTreeMap::new();
    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, line) in input.lines.iter().enumerate() {
        let at = At::Line(i);
        let gtin = match crate::serials::parse_gtin(&line.gtin) {
            Ok(g) => g,
            Err(e) => {
                bad("invalid_order", at, e);
                continue;
            }
        };
        if line.quantity == 0 {
            bad(
                "invalid_order",
                at,
                "quantity must be at least 1".to_owned(),
            );
        }
        let lot = line.lot.as_deref().map(str::trim).filter(|l| !l.is_empty());
        if let Some(lot) = lot
            && let Err(e) = crate::serials::check_lot(&gtin, lot)
        {
            bad("invalid_order", at, format!("lot {lot:?}: {e}"));
        }
        gtins.entry(gtin.as_str().to_owned()).or_default().push(at);
        lines.push(LineInput {
            gtin: gtin.as_str().to_owned(),
            quantity: line.quantity,
            lot: lot.map(str::to_owned),
        });
    }
    let mut units = Vec::with_capacity(input.units.len());
    let mut seen = HashSet::new();
    for (i, unit) in input.units.iter().enumerate() {
        let at = At::Unit(i);
        let key = match (given(&unit.sscc), given(&unit.gtin), given(&unit.serial)) {
            (Some(sscc), None, None) => UnitKey::sscc(sscc).map_err(|e| format!("sscc: {e}")),
            (None, Some(gtin), Some(serial)) => crate::serials::parse_gtin(gtin).and_then(|g| {
                gtins.entry(g.as_str().to_owned()).or_default().push(at);
                UnitKey::sgtin(g.as_str(), serial).map_err(|e| format!("serial: {e}"))
            }),
            _ => Err("a unit is an sscc, or a gtin and a serial".to_owned()),
        };
        let parent = given(&unit.parent_sscc).map(|p| {
            UnitKey::sscc(p)
                .map(|k| k.key())
                .map_err(|e| format!("parent_sscc: {e}"))
        });
        match (key, parent.transpose()) {
            (Ok(key), Ok(parent)) => {
                let id = key.key();
                if !seen.insert(id.clone()) {
                    bad("invalid_order", at, format!("{id} is named twice"));
                }
                units.push((i, UnitInput { id, parent }));
            }
            (Err(e), _) | (_, Err(e)) => bad("invalid_order", at, e),
        }
    }
    for (i, unit) in &units {
        if let Some(p) = unit.parent.as_ref().filter(|p| !seen.contains(p.as_str())) {
            bad(
                "invalid_order",
                At::Unit(*i),
                format!("parent_sscc {p} is not one of the order's units"),
            );
        }
    }
    let known = known_products(db, org, gtins.keys()).await?;
    for (gtin, places) in &gtins {
        if !known.contains(gtin) {
            for at in places {
                bad(
                    "unknown_product",
                    *at,
                    format!("GTIN {gtin} is not in your product master"),
                );
            }
        }
    }

    let (Some((kind, (own, partner_ref))), Some(site), Some(partner), true) =
        (kind_found, site, partner, problems.is_empty())
    else {
        problems.sort_by_key(|p| match p.at {
            At::Order => (0, 0),
            At::Line(i) => (1, i),
            At::Unit(i) => (2, i),
        });
        return Err(OrderError::Invalid(problems));
    };
    let mut refs: BTreeMap<String, String> = input.refs.clone();
    refs.insert(own.to_owned(), order_ref.to_owned());
    refs.insert(partner_ref.to_owned(), partner.as_str().to_owned());
    let task = CreateTask {
        kind: kind.as_str().to_owned(),
        site: site.id.clone(),
        title: Some(
            input
                .title
                .as_deref()
                .map(str::trim)
                .map_or_else(|| format!("{own} {order_ref}"), str::to_owned),
        ),
        refs,
        expected: ExpectedInput {
            lines,
            units: units.into_iter().map(|(_, u)| u).collect(),
        },
    };
    // The task as it would be made: the same order sent twice hashes the same, whatever
    // the spelling of its GTINs (8 to 14 digits) or its JSON layout.
    let hash = hash_token(&serde_json::to_string(&task).unwrap_or_default());
    Ok(Checked {
        kind,
        order_ref: order_ref.to_owned(),
        site_id: site.id,
        partner_gln: partner.as_str().to_owned(),
        task,
        hash,
    })
}

/// The GTINs of `gtins` that are in `org`'s product master.
async fn known_products<'a, C: ConnectionTrait>(
    db: &C,
    org: &str,
    gtins: impl Iterator<Item = &'a String>,
) -> Result<BTreeSet<String>, DbErr> {
    let gtins: Vec<&String> = gtins.collect();
    let mut known = BTreeSet::new();
    for chunk in gtins.chunks(500) {
        let found: Vec<String> = product::Entity::find()
            .select_only()
            .column(product::Column::Gtin)
            .filter(product::Column::OrganisationId.eq(org))
            .filter(product::Column::Gtin.is_in(chunk.iter().map(|g| g.as_str())))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(found);
    }
    Ok(known)
}

/// What applying an order needs of the server: its database, documents and actor.
pub struct Apply<'a> {
    /// The database.
    pub db: &'a DatabaseConnection,
    /// The process's parsed documents.
    pub docs: &'a DocumentCache,
    /// The server's Automerge actor (it writes the expected section).
    pub actor: &'a automerge::ActorId,
}

impl Apply<'_> {
    /// Applies a checked order for `caller`: creates its task, or changes the open task
    /// made from it before, or (sent as it is known) changes nothing. With an
    /// idempotency key, a key seen before with the same order is answered as it was then,
    /// and a key seen with another order is refused.
    pub async fn apply(
        &self,
        caller: &Principal,
        order: &Checked,
        key: Option<&str>,
    ) -> Result<Reply, OrderError> {
        let org = caller.org_id.as_str();
        // A second round only after a concurrent request made the same order (or used
        // the same key) between our read and our write: it then finds it.
        for _ in 0..3 {
            if let Some(key) = key
                && let Some(seen) =
                    erp_order_request::Entity::find_by_id((org.to_owned(), key.to_owned()))
                        .one(self.db)
                        .await?
            {
                if seen.request_hash != order.hash {
                    return Err(OrderError::KeyReused(key.to_owned()));
                }
                return Ok(Reply::Replay {
                    status: u16::try_from(seen.status).unwrap_or(200),
                    body: seen.response,
                });
            }
            let existing = erp_order::Entity::find()
                .filter(erp_order::Column::OrganisationId.eq(org))
                .filter(erp_order::Column::Kind.eq(order.kind.as_str()))
                .filter(erp_order::Column::OrderRef.eq(order.order_ref.as_str()))
                .one(self.db)
                .await?;
            let done = match existing {
                None => self.create(caller, order, key).await?,
                Some(known) => self.update(caller, order, &known, key).await?,
            };
            if let Some(outcome) = done {
                return Ok(Reply::Done(outcome));
            }
        }
        Err(TaskError::Busy(order.order_ref.clone()).into())
    }

    /// Why applying `order` now would be refused (its task ended, or it moves), if it
    /// would: a file checks all its orders before it applies any.
    pub async fn refusal(
        &self,
        caller: &Principal,
        order: &Checked,
    ) -> Result<Option<OrderError>, OrderError> {
        let Some(known) = erp_order::Entity::find()
            .filter(erp_order::Column::OrganisationId.eq(caller.org_id.as_str()))
            .filter(erp_order::Column::Kind.eq(order.kind.as_str()))
            .filter(erp_order::Column::OrderRef.eq(order.order_ref.as_str()))
            .one(self.db)
            .await?
        else {
            return Ok(None);
        };
        if known.content_hash == order.hash {
            return Ok(None);
        }
        let status = self.task_status(&known.task_id).await?;
        Ok(refuse(&known, &status, order))
    }

    /// The status of an order's task (the row only, not its document).
    async fn task_status(&self, id: &str) -> Result<String, OrderError> {
        let status: Option<String> = task_document::Entity::find_by_id(id)
            .select_only()
            .column(task_document::Column::Status)
            .into_tuple()
            .one(self.db)
            .await?;
        status.ok_or_else(|| TaskError::NotFound(id.to_owned()).into())
    }

    /// Makes the order's task, the order row and the key's answer in one transaction;
    /// `None` if another request made the order or used the key first.
    async fn create(
        &self,
        caller: &Principal,
        order: &Checked,
        key: Option<&str>,
    ) -> Result<Option<OrderOutcome>, OrderError> {
        let now = Utc::now();
        let task_id = uuid::Uuid::now_v7().to_string();
        let outcome = OrderOutcome {
            kind: order.kind.as_str().to_owned(),
            order_ref: order.order_ref.clone(),
            task_id: task_id.clone(),
            outcome: Outcome::Created,
            task_status: TaskStatus::Open.as_str().to_owned(),
        };
        let _turn = crate::db::Policy::of(self.db)
            .write_turn(crate::db::Writer::Background)
            .await;
        let txn = self.db.begin().await?;
        // The order row first: of two requests for one new order, one inserts it and the
        // other finds it taken and goes the update way.
        let claimed = erp_order::Entity::insert(erp_order::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            organisation_id: Set(caller.org_id.clone()),
            kind: Set(order.kind.as_str().to_owned()),
            order_ref: Set(order.order_ref.clone()),
            site_id: Set(order.site_id.clone()),
            partner_gln: Set(order.partner_gln.clone()),
            task_id: Set(task_id.clone()),
            content_hash: Set(order.hash.clone()),
            created_by: Set(caller.user_id.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict_do_nothing_on([
            erp_order::Column::OrganisationId,
            erp_order::Column::Kind,
            erp_order::Column::OrderRef,
        ])
        .exec_without_returning(&txn)
        .await?;
        if !matches!(claimed, TryInsertResult::Inserted(n) if n > 0) {
            txn.rollback().await?;
            return Ok(None);
        }
        let made =
            crate::tasks::create_at(&txn, self.actor, caller, &order.task, &task_id, now).await?;
        if made.is_none() || !record(&txn, caller, order, key, 201, &outcome).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(outcome))
    }

    /// Changes the open task of a known order to the order as sent now.
    async fn update(
        &self,
        caller: &Principal,
        order: &Checked,
        known: &erp_order::Model,
        key: Option<&str>,
    ) -> Result<Option<OrderOutcome>, OrderError> {
        let mut outcome = OrderOutcome {
            kind: known.kind.clone(),
            order_ref: known.order_ref.clone(),
            task_id: known.task_id.clone(),
            outcome: Outcome::Unchanged,
            task_status: self.task_status(&known.task_id).await?,
        };
        if known.content_hash != order.hash {
            if let Some(refused) = refuse(known, &outcome.task_status, order) {
                return Err(refused);
            }
            let (header, expected) = crate::tasks::validate(&order.task, &known.site_id)?;
            // Set when the document says the task ended after the row was read.
            let ended = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&ended);
            crate::tasks::change_document(
                self.db,
                self.docs,
                self.actor,
                &known.task_id,
                move |doc, now| {
                    let current = doc.header()?;
                    if current.status != TaskStatus::Open {
                        flag.store(true, Ordering::Relaxed);
                        return Ok(false);
                    }
                    let mut changed = false;
                    if doc.expected()? != expected {
                        doc.set_expected(&expected, now)?;
                        changed = true;
                    }
                    // References are added or changed (an ASN number that came later),
                    // never removed: the projection may have used them already.
                    for (k, v) in &header.refs {
                        if current.refs.get(k) != Some(v) {
                            doc.set_ref(k, v, now)?;
                            changed = true;
                        }
                    }
                    Ok(changed)
                },
                None,
            )
            .await?;
            if ended.load(Ordering::Relaxed) {
                let status = self.task_status(&known.task_id).await?;
                return Err(
                    refuse(known, &status, order).unwrap_or(OrderError::NotOpen {
                        order_ref: known.order_ref.clone(),
                        task: known.task_id.clone(),
                        status,
                    }),
                );
            }
            outcome.outcome = Outcome::Updated;
        }
        let txn = self.db.begin().await?;
        // Only over the hash this request started from: of two different versions sent
        // at once, the one that finds it changed goes round again and is applied last,
        // so the stored hash always names the content the document holds.
        let moved = erp_order::Entity::update_many()
            .col_expr(
                erp_order::Column::ContentHash,
                Expr::value(order.hash.clone()),
            )
            .col_expr(erp_order::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(erp_order::Column::Id.eq(known.id.as_str()))
            .filter(erp_order::Column::ContentHash.eq(known.content_hash.as_str()))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 || !record(&txn, caller, order, key, 200, &outcome).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        txn.commit().await?;
        Ok(Some(outcome))
    }
}

/// Why a known order whose task has `task_status` cannot become `order`: it would move
/// to another site or partner, or its task ended.
fn refuse(known: &erp_order::Model, task_status: &str, order: &Checked) -> Option<OrderError> {
    if known.site_id != order.site_id || known.partner_gln != order.partner_gln {
        return Some(OrderError::Conflict(format!(
            "order {} was sent for another site or partner; an update cannot move it: cancel its task and send a new order",
            known.order_ref
        )));
    }
    (task_status != TaskStatus::Open.as_str()).then(|| OrderError::NotOpen {
        order_ref: known.order_ref.clone(),
        task: known.task_id.clone(),
        status: task_status.to_owned(),
    })
}

/// Stores the answer given to `key` (if any); false if the key was taken meanwhile.
async fn record<C: ConnectionTrait>(
    txn: &C,
    caller: &Principal,
    order: &Checked,
    key: Option<&str>,
    status: u16,
    outcome: &OrderOutcome,
) -> Result<bool, OrderError> {
    let Some(key) = key else {
        return Ok(true);
    };
    let inserted = erp_order_request::Entity::insert(erp_order_request::ActiveModel {
        organisation_id: Set(caller.org_id.clone()),
        idempotency_key: Set(key.to_owned()),
        request_hash: Set(order.hash.clone()),
        status: Set(i32::from(status)),
        response: Set(serde_json::to_string(outcome).unwrap_or_default()),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([
        erp_order_request::Column::OrganisationId,
        erp_order_request::Column::IdempotencyKey,
    ])
    .exec_without_returning(txn)
    .await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
}
