//! Reference data for the scanners' rules, by version: the product master, recalled lots,
//! blocked serials (manufacturer status suspect, illegitimate or decommissioned, and packs
//! the projection holds: quarantined or destroyed), each site's expiry policy and
//! locations. The same data feeds the server's own run of the rules at projection.
//!
//! Every entry lives in `reference_item` with the version that last changed it; entries
//! that stop applying stay as tombstones, so a delta since any version can say what to
//! remove. Writers of the sources (product import, recalls, serial status, the projection)
//! call [`touched`] in their own transaction with the keys they changed: the entries are
//! recomputed from the sources and, only where something differs, rewritten under a new
//! version. The organisation's counter row is raised in that transaction and held to its
//! commit, so versions become visible in order and a reader never skips one.
//!
//! Not here: the rules themselves (`swt_domain::rules`), the product master's CSV parsing
//! (`products`), serials and lots (`crate::serials`).

pub mod cache;
pub mod products;
pub mod routes;

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use swt_domain::api::ReferenceUpdate;
use swt_domain::gs1::Gtin;
use swt_domain::model::{
    ExpiryPolicy, Location, LotKey, Product, ReferenceData, ReferenceDelta, SerialKey,
};

use crate::db::entity::{
    product, reference_item, reference_version, site, trace_object, verification_lot,
    verification_serial,
};

/// Why reference data could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// No such site in the caller's organisation.
    #[error("site {0} not found")]
    UnknownSite(String),
    /// The request is not acceptable; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Entry kinds in `reference_item.kind`.
mod kind {
    pub const PRODUCT: &str = "product";
    pub const LOT: &str = "lot";
    /// Manufacturer status other than active.
    pub const SERIAL: &str = "serial";
    /// A pack the projection holds (quarantined, destroyed).
    pub const HELD: &str = "held";
    pub const POLICY: &str = "policy";
    pub const LOCATION: &str = "location";
}

/// Keys per `IN (…)` list.
const BATCH: usize = 500;

/// A delta with more changed entries than this is sent as a full copy instead: past that
/// point the copy is smaller than the changes and the scanner rebuilds once.
const MAX_DELTA_ITEMS: usize = 50_000;

/// Keys of source rows a writer changed, for [`touched`].
#[derive(Debug, Clone)]
pub enum Touched<'a> {
    /// GTIN-14s of products added, changed or removed.
    Products(&'a [String]),
    /// (GTIN, lot) of lots whose recall changed.
    Lots(&'a [(String, String)]),
    /// (GTIN, serial) of manufacturer serials whose status changed.
    Serials(&'a [(String, String)]),
    /// (GTIN, serial) of packs whose projected status changed.
    Held(&'a [(String, String)]),
}

/// One wanted entry: kind, site ('' = all), keys, payload, live.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    site: String,
    key1: String,
    key2: String,
    payload: String,
    live: bool,
}

impl Entry {
    fn id(&self) -> (String, String, String, String) {
        (
            self.kind.to_owned(),
            self.site.clone(),
            self.key1.clone(),
            self.key2.clone(),
        )
    }
}

/// The product fields scanners see, as stored in an entry's payload.
#[derive(Debug, Serialize, Deserialize)]
struct ProductPayload {
    name: String,
    serialized: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ndc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pack_size: Option<String>,
}

fn product_entry(p: &product::Model) -> Entry {
    let payload = serde_json::to_string(&ProductPayload {
        name: p.name.clone(),
        serialized: p.serialized,
        ndc: p.ndc.clone(),
        pack_size: p.pack_size.clone(),
    })
    .unwrap_or_default();
    Entry {
        kind: kind::PRODUCT,
        site: String::new(),
        key1: p.gtin.clone(),
        key2: String::new(),
        payload,
        live: true,
    }
}

fn pair_entry(kind: &'static str, key1: &str, key2: &str, payload: &str, live: bool) -> Entry {
    Entry {
        kind,
        site: String::new(),
        key1: key1.to_owned(),
        key2: key2.to_owned(),
        payload: payload.to_owned(),
        live,
    }
}

/// What the sources say now about `t`'s keys (an entry per key; `live = false` where it
/// no longer applies or the source row is gone).
async fn wanted<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    t: &Touched<'_>,
) -> Result<Vec<Entry>, DbErr> {
    let mut out = Vec::new();
    match t {
        Touched::Products(gtins) => {
            for chunk in gtins.chunks(BATCH) {
                let rows: BTreeMap<String, product::Model> = product::Entity::find()
                    .filter(product::Column::OrganisationId.eq(org))
                    .filter(product::Column::Gtin.is_in(chunk.to_vec()))
                    .all(conn)
                    .await?
                    .into_iter()
                    .map(|p| (p.gtin.clone(), p))
                    .collect();
                for g in chunk {
                    out.push(match rows.get(g) {
                        Some(p) => product_entry(p),
                        None => pair_entry(kind::PRODUCT, g, "", "", false),
                    });
                }
            }
        }
        Touched::Lots(keys) => {
            for chunk in keys.chunks(BATCH) {
                let gtins: BTreeSet<&str> = chunk.iter().map(|(g, _)| g.as_str()).collect();
                let lots: BTreeSet<&str> = chunk.iter().map(|(_, l)| l.as_str()).collect();
                let recalled: BTreeSet<(String, String)> = verification_lot::Entity::find()
                    .filter(verification_lot::Column::OrganisationId.eq(org))
                    .filter(verification_lot::Column::Gtin.is_in(gtins))
                    .filter(verification_lot::Column::Lot.is_in(lots))
                    .filter(verification_lot::Column::Recalled.eq(true))
                    .all(conn)
                    .await?
                    .into_iter()
                    .map(|l| (l.gtin, l.lot))
                    .collect();
                for (g, l) in chunk {
                    let live = recalled.contains(&(g.clone(), l.clone()));
                    out.push(pair_entry(kind::LOT, g, l, "", live));
                }
            }
        }
        Touched::Serials(keys) => {
            for chunk in keys.chunks(BATCH) {
                let gtins: BTreeSet<&str> = chunk.iter().map(|(g, _)| g.as_str()).collect();
                let serials: BTreeSet<&str> = chunk.iter().map(|(_, s)| s.as_str()).collect();
                let status: BTreeMap<(String, String), String> =
                    verification_serial::Entity::find()
                        .filter(verification_serial::Column::OrganisationId.eq(org))
                        .filter(verification_serial::Column::Gtin.is_in(gtins))
                        .filter(verification_serial::Column::Serial.is_in(serials))
                        .all(conn)
                        .await?
                        .into_iter()
                        .map(|s| ((s.gtin, s.serial), s.status))
                        .collect();
                for (g, s) in chunk {
                    match status.get(&(g.clone(), s.clone())) {
                        Some(st) if st != "active" => {
                            out.push(pair_entry(kind::SERIAL, g, s, st, true))
                        }
                        _ => out.push(pair_entry(kind::SERIAL, g, s, "", false)),
                    }
                }
            }
        }
        Touched::Held(keys) => {
            for chunk in keys.chunks(BATCH) {
                let epc: Vec<String> = chunk
                    .iter()
                    .map(|(g, s)| format!("sgtin:{g}:{s}"))
                    .collect();
                let status: BTreeMap<String, crate::projection::UnitStatus> =
                    trace_object::Entity::find()
                        .filter(trace_object::Column::OrganisationId.eq(org))
                        .filter(trace_object::Column::EpcKey.is_in(epc.clone()))
                        .all(conn)
                        .await?
                        .into_iter()
                        .map(|o| (o.epc_key, o.status))
                        .collect();
                for ((g, s), key) in chunk.iter().zip(&epc) {
                    match status.get(key) {
                        Some(st) if st.is_held() => {
                            out.push(pair_entry(kind::HELD, g, s, st.as_str(), true))
                        }
                        _ => out.push(pair_entry(kind::HELD, g, s, "", false)),
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Recomputes the entries for keys a writer changed, in the writer's transaction, and
/// stores those that differ under a new version. Returns the new version, or `None` when
/// nothing the scanners see changed.
pub async fn touched<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    t: Touched<'_>,
) -> Result<Option<u64>, DbErr> {
    let wanted = wanted(conn, org, &t).await?;
    store_changed(conn, org, wanted).await
}

/// Stores the entries that differ from what is stored (a live entry new or changed, a
/// stored live entry no longer live) under one new version.
async fn store_changed<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    wanted: Vec<Entry>,
) -> Result<Option<u64>, DbErr> {
    if wanted.is_empty() {
        return Ok(None);
    }
    let mut changed = Vec::new();
    for chunk in wanted.chunks(BATCH) {
        let kinds: BTreeSet<&str> = chunk.iter().map(|e| e.kind).collect();
        let k1: BTreeSet<&str> = chunk.iter().map(|e| e.key1.as_str()).collect();
        let k2: BTreeSet<&str> = chunk.iter().map(|e| e.key2.as_str()).collect();
        let stored: BTreeMap<(String, String, String, String), reference_item::Model> =
            reference_item::Entity::find()
                .filter(reference_item::Column::OrganisationId.eq(org))
                .filter(reference_item::Column::Kind.is_in(kinds))
                .filter(reference_item::Column::Key1.is_in(k1))
                .filter(reference_item::Column::Key2.is_in(k2))
                .all(conn)
                .await?
                .into_iter()
                .map(|m| {
                    (
                        (
                            m.kind.clone(),
                            m.site_id.clone(),
                            m.key1.clone(),
                            m.key2.clone(),
                        ),
                        m,
                    )
                })
                .collect();
        for e in chunk {
            let differs = match stored.get(&e.id()) {
                None => e.live,
                Some(m) => m.removed == e.live || (e.live && m.payload != e.payload),
            };
            if differs {
                changed.push(e.clone());
            }
        }
    }
    if changed.is_empty() {
        return Ok(None);
    }
    let version = next_version(conn, org).await?;
    write_entries(conn, org, &changed, version).await?;
    Ok(Some(version))
}

async fn write_entries<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    entries: &[Entry],
    version: u64,
) -> Result<(), DbErr> {
    let v = i64::try_from(version).unwrap_or(i64::MAX);
    for chunk in entries.chunks(BATCH) {
        let rows = chunk.iter().map(|e| reference_item::ActiveModel {
            organisation_id: sea_orm::Set(org.to_owned()),
            kind: sea_orm::Set(e.kind.to_owned()),
            site_id: sea_orm::Set(e.site.clone()),
            key1: sea_orm::Set(e.key1.clone()),
            key2: sea_orm::Set(e.key2.clone()),
            payload: sea_orm::Set(if e.live {
                e.payload.clone()
            } else {
                String::new()
            }),
            version: sea_orm::Set(v),
            removed: sea_orm::Set(!e.live),
        });
        reference_item::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    reference_item::Column::OrganisationId,
                    reference_item::Column::Kind,
                    reference_item::Column::SiteId,
                    reference_item::Column::Key1,
                    reference_item::Column::Key2,
                ])
                .update_columns([
                    reference_item::Column::Payload,
                    reference_item::Column::Version,
                    reference_item::Column::Removed,
                ])
                .to_owned(),
            )
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Raises the organisation's version and returns it. The first time, the organisation's
/// entries are built from the sources as version 1 (data that predates this table).
async fn next_version<C: ConnectionTrait>(conn: &C, org: &str) -> Result<u64, DbErr> {
    let raised = reference_version::Entity::update_many()
        .col_expr(
            reference_version::Column::Version,
            Expr::col(reference_version::Column::Version).add(1),
        )
        .filter(reference_version::Column::OrganisationId.eq(org))
        .exec(conn)
        .await?;
    if raised.rows_affected == 0 {
        initialise(conn, org).await?;
        return Box::pin(next_version(conn, org)).await;
    }
    current_version(conn, org).await
}

/// The organisation's current version (0 before anything was recorded).
pub async fn current_version<C: ConnectionTrait>(conn: &C, org: &str) -> Result<u64, DbErr> {
    Ok(reference_version::Entity::find_by_id(org.to_owned())
        .one(conn)
        .await?
        .map_or(0, |r| u64::try_from(r.version).unwrap_or(0)))
}

/// Builds the organisation's entries from the sources as version 1. A concurrent first
/// writer makes the insert of the counter conflict: then it did the work.
async fn initialise<C: ConnectionTrait>(conn: &C, org: &str) -> Result<(), DbErr> {
    let inserted = reference_version::Entity::insert(reference_version::ActiveModel {
        organisation_id: sea_orm::Set(org.to_owned()),
        version: sea_orm::Set(1),
    })
    .on_conflict(
        OnConflict::column(reference_version::Column::OrganisationId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    if inserted == 0 {
        return Ok(());
    }
    let mut entries: Vec<Entry> = product::Entity::find()
        .filter(product::Column::OrganisationId.eq(org))
        .all(conn)
        .await?
        .iter()
        .map(product_entry)
        .collect();
    for l in verification_lot::Entity::find()
        .filter(verification_lot::Column::OrganisationId.eq(org))
        .filter(verification_lot::Column::Recalled.eq(true))
        .all(conn)
        .await?
    {
        entries.push(pair_entry(kind::LOT, &l.gtin, &l.lot, "", true));
    }
    for s in verification_serial::Entity::find()
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .filter(verification_serial::Column::Status.ne("active"))
        .all(conn)
        .await?
    {
        entries.push(pair_entry(
            kind::SERIAL,
            &s.gtin,
            &s.serial,
            &s.status,
            true,
        ));
    }
    let held: Vec<(Option<String>, Option<String>, String)> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::Gtin)
        .column(trace_object::Column::Serial)
        .column(trace_object::Column::Status)
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Kind.eq("sgtin"))
        .filter(trace_object::Column::Status.is_in(crate::projection::UnitStatus::HELD))
        .into_tuple()
        .all(conn)
        .await?;
    for (g, s, st) in held {
        if let (Some(g), Some(s)) = (g, s) {
            entries.push(pair_entry(kind::HELD, &g, &s, &st, true));
        }
    }
    write_entries(conn, org, &entries, 1).await
}

/// A site of `org`, or `UnknownSite`.
async fn site_of<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
) -> Result<site::Model, ReferenceError> {
    site::Entity::find_by_id(site_id.to_owned())
        .filter(site::Column::OrganisationId.eq(org))
        .one(conn)
        .await?
        .ok_or_else(|| ReferenceError::UnknownSite(site_id.to_owned()))
}

/// Sets a site's expiry policy.
pub async fn set_policy(
    db: &DatabaseConnection,
    org: &str,
    site_id: &str,
    policy: &ExpiryPolicy,
) -> Result<u64, ReferenceError> {
    let txn = db.begin().await?;
    site_of(&txn, org, site_id).await?;
    let payload =
        serde_json::to_string(policy).map_err(|e| ReferenceError::Invalid(e.to_string()))?;
    let entry = Entry {
        kind: kind::POLICY,
        site: site_id.to_owned(),
        key1: String::new(),
        key2: String::new(),
        payload,
        live: true,
    };
    let v = store_changed(&txn, org, vec![entry]).await?;
    let v = match v {
        Some(v) => v,
        None => current_version(&txn, org).await?,
    };
    txn.commit().await?;
    Ok(v)
}

/// Sets a site's expiry policy unless one is set (seeding: a manager's choice stays).
pub async fn set_policy_unless_set(
    db: &DatabaseConnection,
    org: &str,
    site_id: &str,
    policy: &ExpiryPolicy,
) -> Result<(), ReferenceError> {
    let set = reference_item::Entity::find()
        .filter(reference_item::Column::OrganisationId.eq(org))
        .filter(reference_item::Column::Kind.eq(kind::POLICY))
        .filter(reference_item::Column::SiteId.eq(site_id))
        .one(db)
        .await?
        .is_some();
    if !set {
        set_policy(db, org, site_id, policy).await?;
    }
    Ok(())
}

/// Adds or renames a location of a site (`name = None` removes it).
pub async fn set_location(
    db: &DatabaseConnection,
    org: &str,
    site_id: &str,
    code: &str,
    name: Option<&str>,
) -> Result<u64, ReferenceError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 64 || code.chars().any(char::is_control) {
        return Err(ReferenceError::Invalid(
            "a location code is 1 to 64 printable characters".to_owned(),
        ));
    }
    if let Some(n) = name
        && (n.trim().is_empty() || n.len() > 200)
    {
        return Err(ReferenceError::Invalid(
            "a location name is 1 to 200 characters".to_owned(),
        ));
    }
    let txn = db.begin().await?;
    site_of(&txn, org, site_id).await?;
    let entry = Entry {
        kind: kind::LOCATION,
        site: site_id.to_owned(),
        key1: code.to_owned(),
        key2: String::new(),
        payload: name.map(|n| n.trim().to_owned()).unwrap_or_default(),
        live: name.is_some(),
    };
    let v = match store_changed(&txn, org, vec![entry]).await? {
        Some(v) => v,
        None => current_version(&txn, org).await?,
    };
    txn.commit().await?;
    Ok(v)
}

/// The GTIN an entry is keyed by. The sources only hold checked GTINs; an entry whose key
/// is not one is left out of what scanners get (a full copy and a delta alike), logged.
fn entry_gtin(m: &reference_item::Model) -> Option<Gtin> {
    match Gtin::parse(&m.key1) {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!(org = %m.organisation_id, kind = %m.kind, key = %m.key1, error = %e,
                "reference entry keyed by a malformed GTIN: not sent to scanners");
            None
        }
    }
}

/// Adds a live entry to the data being built.
fn put(data: &mut ReferenceData, m: &reference_item::Model) {
    match m.kind.as_str() {
        kind::PRODUCT => {
            if let Ok(p) = serde_json::from_str::<ProductPayload>(&m.payload)
                && let Some(gtin) = entry_gtin(m)
            {
                data.products.insert(
                    m.key1.clone(),
                    Product {
                        gtin,
                        name: p.name,
                        serialized: p.serialized,
                        ndc: p.ndc,
                        pack_size: p.pack_size,
                    },
                );
            }
        }
        kind::LOT if entry_gtin(m).is_some() => data.recall(&m.key1, &m.key2),
        kind::SERIAL | kind::HELD if entry_gtin(m).is_some() => data.block(&m.key1, &m.key2),
        kind::POLICY => {
            if let Ok(p) = serde_json::from_str(&m.payload) {
                data.expiry_policy = p;
            }
        }
        kind::LOCATION => {
            data.locations.insert(
                m.key1.clone(),
                Location {
                    code: m.key1.clone(),
                    name: m.payload.clone(),
                },
            );
        }
        _ => {}
    }
}

/// Entries of `org` for `site` (its own and the organisation-wide ones) changed after
/// `since`, at most `limit` (the caller sends a full copy past that).
async fn changed_since<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
    since: u64,
    limit: u64,
) -> Result<Vec<reference_item::Model>, DbErr> {
    reference_item::Entity::find()
        .filter(reference_item::Column::OrganisationId.eq(org))
        .filter(reference_item::Column::SiteId.is_in([String::new(), site_id.to_owned()]))
        .filter(reference_item::Column::Version.gt(i64::try_from(since).unwrap_or(i64::MAX)))
        .limit(limit)
        .all(conn)
        .await
}

/// The full reference data of a site.
pub async fn snapshot(
    db: &DatabaseConnection,
    org: &str,
    site_id: &str,
) -> Result<ReferenceData, ReferenceError> {
    site_of(db, org, site_id).await?;
    ensure(db, org).await?;
    let txn = crate::db::Policy::of(db).begin_snapshot_read(db).await?;
    let data = snapshot_in(&txn, org, site_id).await?;
    txn.commit().await?;
    Ok(data)
}

async fn snapshot_in<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
) -> Result<ReferenceData, DbErr> {
    let version = current_version(conn, org).await?;
    let mut data = ReferenceData {
        site: site_id.to_owned(),
        version,
        ..Default::default()
    };
    // In pages by primary key, so the rows held at once stay bounded however many
    // serials are blocked.
    let mut after: Option<(String, String, String, String)> = None;
    loop {
        let mut q = reference_item::Entity::find()
            .filter(reference_item::Column::OrganisationId.eq(org))
            .filter(reference_item::Column::SiteId.is_in([String::new(), site_id.to_owned()]))
            .filter(reference_item::Column::Removed.eq(false));
        if let Some((k, st, k1, k2)) = &after {
            q = q.filter(
                Expr::tuple([
                    Expr::col(reference_item::Column::Kind),
                    Expr::col(reference_item::Column::SiteId),
                    Expr::col(reference_item::Column::Key1),
                    Expr::col(reference_item::Column::Key2),
                ])
                .gt(Expr::tuple([
                    Expr::value(k.clone()),
                    Expr::value(st.clone()),
                    Expr::value(k1.clone()),
                    Expr::value(k2.clone()),
                ])),
            );
        }
        let page = q
            .order_by_asc(reference_item::Column::Kind)
            .order_by_asc(reference_item::Column::SiteId)
            .order_by_asc(reference_item::Column::Key1)
            .order_by_asc(reference_item::Column::Key2)
            .limit(SNAPSHOT_PAGE)
            .all(conn)
            .await?;
        for m in &page {
            put(&mut data, m);
        }
        match page.last() {
            Some(m) if page.len() as u64 == SNAPSHOT_PAGE => {
                after = Some((
                    m.kind.clone(),
                    m.site_id.clone(),
                    m.key1.clone(),
                    m.key2.clone(),
                ))
            }
            _ => return Ok(data),
        }
    }
}

/// Entries read per query while building a full copy.
const SNAPSHOT_PAGE: u64 = 10_000;

/// Makes sure the organisation's entries exist (built from the sources the first time).
async fn ensure(db: &DatabaseConnection, org: &str) -> Result<(), DbErr> {
    if current_version(db, org).await? > 0 {
        return Ok(());
    }
    let txn = db.begin().await?;
    initialise(&txn, org).await?;
    txn.commit().await
}

/// What a scanner holding `since` (None: nothing) needs: nothing, a delta or a full copy.
pub async fn update(
    db: &DatabaseConnection,
    org: &str,
    site_id: &str,
    since: Option<u64>,
) -> Result<ReferenceUpdate, ReferenceError> {
    site_of(db, org, site_id).await?;
    ensure(db, org).await?;
    let txn = crate::db::Policy::of(db).begin_snapshot_read(db).await?;
    let current = current_version(&txn, org).await?;
    let out = match since {
        Some(v) if v == current => ReferenceUpdate::Current {
            site: site_id.to_owned(),
            version: current,
        },
        // A version from the future is another database's: start again.
        Some(v) if v > 0 && v < current => {
            let changed = changed_since(&txn, org, site_id, v, MAX_DELTA_ITEMS as u64 + 1).await?;
            if changed.len() > MAX_DELTA_ITEMS {
                ReferenceUpdate::Full(snapshot_in(&txn, org, site_id).await?)
            } else {
                ReferenceUpdate::Delta(delta(&txn, org, site_id, v, current, changed).await?)
            }
        }
        _ => ReferenceUpdate::Full(snapshot_in(&txn, org, site_id).await?),
    };
    txn.commit().await?;
    Ok(out)
}

async fn delta<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
    from: u64,
    to: u64,
    changed: Vec<reference_item::Model>,
) -> Result<ReferenceDelta, DbErr> {
    let mut d = ReferenceDelta {
        site: site_id.to_owned(),
        from_version: from,
        to_version: to,
        ..Default::default()
    };
    // A serial is blocked while any of its two sources (manufacturer status, projected
    // hold) says so: a tombstone of one source removes it only if the other is not live.
    let mut serials: BTreeSet<(Gtin, String)> = BTreeSet::new();
    for m in changed {
        match (m.kind.as_str(), m.removed) {
            (kind::SERIAL | kind::HELD, _) => {
                if let Some(gtin) = entry_gtin(&m) {
                    serials.insert((gtin, m.key2));
                }
            }
            (kind::LOT, removed) => {
                if let Some(gtin) = entry_gtin(&m) {
                    let key = LotKey { gtin, lot: m.key2 };
                    if removed {
                        d.remove_recalled_lots.push(key);
                    } else {
                        d.add_recalled_lots.push(key);
                    }
                }
            }
            (kind::PRODUCT, true) => d.remove_products.push(m.key1),
            (kind::LOCATION, true) => d.remove_locations.push(m.key1),
            (_, false) => {
                let mut one = ReferenceData::default();
                put(&mut one, &m);
                d.upsert_products.extend(one.products.into_values());
                d.upsert_locations.extend(one.locations.into_values());
                if m.kind == kind::POLICY {
                    d.expiry_policy = Some(one.expiry_policy);
                }
            }
            (_, true) => {}
        }
    }
    let keys: Vec<(Gtin, String)> = serials.into_iter().collect();
    for chunk in keys.chunks(BATCH) {
        let gtins: BTreeSet<&str> = chunk.iter().map(|(g, _)| g.as_str()).collect();
        let nos: BTreeSet<&str> = chunk.iter().map(|(_, s)| s.as_str()).collect();
        let live: BTreeSet<(String, String)> = reference_item::Entity::find()
            .filter(reference_item::Column::OrganisationId.eq(org))
            .filter(reference_item::Column::Kind.is_in([kind::SERIAL, kind::HELD]))
            .filter(reference_item::Column::Key1.is_in(gtins))
            .filter(reference_item::Column::Key2.is_in(nos))
            .filter(reference_item::Column::Removed.eq(false))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| (m.key1, m.key2))
            .collect();
        for (g, s) in chunk {
            let key = SerialKey {
                gtin: *g,
                serial: s.clone(),
            };
            if live.contains(&(g.to_string(), s.clone())) {
                d.add_blocked_serials.push(key);
            } else {
                d.remove_blocked_serials.push(key);
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_entry_builds_what_a_snapshot_entry_builds() {
        let m = reference_item::Model {
            organisation_id: "o".into(),
            kind: kind::PRODUCT.into(),
            site_id: String::new(),
            key1: "09506000134352".into(),
            key2: String::new(),
            payload: r#"{"name":"Aspirin","serialized":false,"ndc":"0123456789"}"#.into(),
            version: 3,
            removed: false,
        };
        let mut d = ReferenceData::default();
        put(&mut d, &m);
        let p = &d.products["09506000134352"];
        assert_eq!((p.name.as_str(), p.serialized), ("Aspirin", false));
        assert_eq!(p.ndc.as_deref(), Some("0123456789"));
    }
}
