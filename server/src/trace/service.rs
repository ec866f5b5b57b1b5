//! Trace queries over the projection's tables. Every query is scoped to one organisation;
//! something of another organisation is indistinguishable from something that does not
//! exist (the routes answer 404 for both).
//!
//! Lookups use the narrow indexes of the projection migration: history is a range on
//! `epcis_event_epc (organisation_id, epc_key, event_time_ms, event_pk)` then primary-key
//! fetches; container explosion is one `(organisation_id, parent_key)` look-up per level.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Condition, Expr, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
// `count()` on expressions is a trait method in sea-orm 2.
use sea_orm::ExprTrait;

use super::dto::*;
use crate::db::entity::epcis_event_epc::{ROLE_CHILD, ROLE_EPC, ROLE_PARENT};
use crate::db::entity::{
    app_user, epcis_event, epcis_event_epc, exception_note, projected_scan, stock_level,
    trace_exception, trace_exception_scan, trace_object,
};
use crate::epcis::gcp::GcpLengths;
use crate::epcis::render::{EpcFormat, RenderError, render};
use crate::epcis::{EpcisEvent, EpcisQueryDocument, UnitKey, format_time_ms};

/// Why a trace query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Nothing of that id in the caller's organisation.
    #[error("{0} not found")]
    NotFound(String),
    /// A parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The exception was already resolved.
    #[error("exception {0} is already resolved")]
    AlreadyResolved(String),
    /// The export cannot be written in the identifier syntax asked for.
    #[error("{0}")]
    Render(#[from] RenderError),
    /// The database failed.
    #[error("trace database error: {0}")]
    Db(#[from] DbErr),
}

impl From<crate::http::page::BadCursor> for TraceError {
    fn from(e: crate::http::page::BadCursor) -> Self {
        TraceError::BadRequest(e.to_string())
    }
}

pub use crate::http::page::MAX_LIMIT;
/// Default page.
pub const DEFAULT_LIMIT: u64 = 50;

fn limit(l: Option<u64>) -> u64 {
    crate::http::page::limit(l, DEFAULT_LIMIT)
}

fn key(id: &str) -> Result<UnitKey, TraceError> {
    UnitKey::parse(id).map_err(|e| TraceError::BadRequest(e.to_string()))
}

/// `<time>.<pk>` keyset cursor: stable under inserts, index-only to continue.
fn parse_cursor(c: &str) -> Result<(i64, String), TraceError> {
    let bad = || TraceError::BadRequest(format!("bad cursor {c:?}"));
    let (t, rest) = c.split_once('.').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, rest.to_owned()))
}

fn object_dto(m: trace_object::Model) -> ObjectState {
    // The key's parts were checked when the row was written: rebuild the key from them
    // rather than parse (and check) the key text again, which was half the cost of a
    // pallet's explosion (6,000 rows). The Digital Link still comes from the GS1 engine.
    let key = match (&m.sscc, &m.gtin, &m.serial) {
        (Some(s), _, _) => Some(UnitKey::Sscc(s.clone())),
        (None, Some(gtin), Some(serial)) => Some(UnitKey::Sgtin {
            gtin: gtin.clone(),
            serial: serial.clone(),
        }),
        _ => UnitKey::parse(&m.epc_key).ok(),
    };
    ObjectState {
        id: m.epc_key.clone(),
        digital_link: key.and_then(|k| k.to_digital_link().ok()),
        kind: m.kind,
        gtin: m.gtin,
        serial: m.serial,
        sscc: m.sscc,
        lot: m.lot,
        expiry: m.expiry,
        site_id: m.site_id,
        location: m.location,
        status: m.status,
        parent: m.parent_key,
        order_ref: m.order_ref,
        last_event_time: (m.last_event_time_ms > i64::MIN)
            .then(|| format_time_ms(m.last_event_time_ms)),
        last_scan_id: m.last_scan_id,
    }
}

/// Current state of a pack or container.
pub async fn object(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
) -> Result<ObjectState, TraceError> {
    let k = key(id)?;
    trace_object::Entity::find_by_id((org.to_owned(), k.key()))
        .one(db)
        .await?
        .map(object_dto)
        .ok_or_else(|| TraceError::NotFound(k.key()))
}

/// What a history line shows of an event: every column but the JSON-LD body, which a line
/// does not show and which for the aggregation event of a pallet kept whole lists 6,000
/// EPCs (~400 KB).
#[derive(sea_orm::FromQueryResult)]
struct EventHead {
    pk: i64,
    organisation_id: String,
    event_id: String,
    event_type: String,
    action: String,
    biz_step: Option<String>,
    disposition: Option<String>,
    event_time_ms: i64,
    event_time_zone_offset: String,
    record_time_ms: i64,
    site_id: Option<String>,
    location: Option<String>,
    read_point: Option<String>,
    biz_location: Option<String>,
    document_id: Option<String>,
    scan_id: Option<String>,
    user_id: Option<String>,
    device_id: Option<String>,
}

/// Every event naming the object, oldest first (or newest first), one page.
pub async fn history(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    q: &HistoryQuery,
) -> Result<Page<HistoryEntry>, TraceError> {
    let k = key(id)?.key();
    let n = limit(q.limit);
    let desc = q.order.as_deref() == Some("desc");
    let mut sel = epcis_event_epc::Entity::find()
        .filter(epcis_event_epc::Column::OrganisationId.eq(org))
        .filter(epcis_event_epc::Column::EpcKey.eq(k.clone()));
    if let Some(c) = &q.cursor {
        let (t, pk) = parse_cursor(c)?;
        let pk: i64 = pk
            .parse()
            .map_err(|_| TraceError::BadRequest(format!("bad cursor {c:?}")))?;
        let (tc, pc) = (
            epcis_event_epc::Column::EventTimeMs,
            epcis_event_epc::Column::EventPk,
        );
        sel = sel.filter(if desc {
            Condition::any()
                .add(tc.lt(t))
                .add(Condition::all().add(tc.eq(t)).add(pc.lt(pk)))
        } else {
            Condition::any()
                .add(tc.gt(t))
                .add(Condition::all().add(tc.eq(t)).add(pc.gt(pk)))
        });
    }
    let links = if desc {
        sel.order_by_desc(epcis_event_epc::Column::EventTimeMs)
            .order_by_desc(epcis_event_epc::Column::EventPk)
    } else {
        sel.order_by_asc(epcis_event_epc::Column::EventTimeMs)
            .order_by_asc(epcis_event_epc::Column::EventPk)
    }
    .limit(n + 1)
    .all(db)
    .await?;
    if links.is_empty() && q.cursor.is_none() {
        // No events: known (e.g. only inferred from supplier data) or not ours at all.
        object(db, org, &k).await?;
    }
    let more = links.len() as u64 > n;
    let links: Vec<_> = links.into_iter().take(n as usize).collect();
    let pks: Vec<i64> = links.iter().map(|l| l.event_pk).collect();
    use epcis_event::Column as E;
    let events: BTreeMap<i64, EventHead> = epcis_event::Entity::find()
        .select_only()
        .columns([
            E::Pk,
            E::OrganisationId,
            E::EventId,
            E::EventType,
            E::Action,
            E::BizStep,
            E::Disposition,
            E::EventTimeMs,
            E::EventTimeZoneOffset,
            E::RecordTimeMs,
            E::SiteId,
            E::Location,
            E::ReadPoint,
            E::BizLocation,
            E::DocumentId,
            E::ScanId,
            E::UserId,
            E::DeviceId,
        ])
        // By key alone: with `organisation_id = ?` as well, SQLite (without statistics)
        // took the organisation's prefix of an index for the better plan as soon as the
        // list passed ~10 keys and scanned 10 million entries (0.8 s). The keys come from
        // this organisation's links; the organisation is checked on the rows instead.
        .filter(E::Pk.is_in(pks))
        .into_model::<EventHead>()
        .all(db)
        .await?
        .into_iter()
        .filter(|e| e.organisation_id == org)
        .map(|e| (e.pk, e))
        .collect();
    let next_cursor = if more {
        links
            .last()
            .map(|l| format!("{}.{}", l.event_time_ms, l.event_pk))
    } else {
        None
    };
    let items = links
        .into_iter()
        .filter_map(|l| {
            let e = events.get(&l.event_pk)?;
            Some(HistoryEntry {
                event_id: e.event_id.clone(),
                event_type: e.event_type.clone(),
                action: e.action.clone(),
                biz_step: e.biz_step.clone(),
                disposition: e.disposition.clone(),
                role: l.role,
                event_time: format_time_ms(e.event_time_ms),
                event_time_zone_offset: e.event_time_zone_offset.clone(),
                record_time: format_time_ms(e.record_time_ms),
                user_id: e.user_id.clone(),
                device_id: e.device_id.clone(),
                site_id: e.site_id.clone(),
                location: e.location.clone(),
                read_point: e.read_point.clone(),
                biz_location: e.biz_location.clone(),
                document_id: e.document_id.clone(),
                scan_id: e.scan_id.clone(),
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// The object's events as an EPCIS 2.0 query document (with `recordTime`), oldest first,
/// identifiers written in `format`: its own events, and those of every container it was
/// inside while it was inside (see [`containers`]).
pub async fn epcis_history(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    format: EpcFormat,
    gcp: &GcpLengths,
) -> Result<EpcisQueryDocument, TraceError> {
    let k = key(id)?.key();
    let own = links(db, org, &k).await?;
    if own.is_empty() {
        object(db, org, &k).await?;
    }
    let mut pks: std::collections::BTreeSet<i64> = own.iter().map(|l| l.event_pk).collect();
    // Level by level up the hierarchy, each container within the window its content was
    // inside it (bounded like the contents walk).
    let mut level = vec![(k, own, Window::ALL)];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for (obj, obj_links, window) in level {
            for (parent, inside) in containers(db, org, &obj, &obj_links, window).await? {
                let parent_links = links(db, org, &parent).await?;
                // The container's own events and its aggregation into a larger one, not
                // the packing of other contents (role `parent`).
                pks.extend(
                    parent_links
                        .iter()
                        .filter(|l| l.role != ROLE_PARENT && inside.contains(l.event_time_ms))
                        .map(|l| l.event_pk),
                );
                next.push((parent, parent_links, inside));
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    let pks: Vec<i64> = pks.into_iter().collect();
    let mut rows = Vec::with_capacity(pks.len());
    // By key alone, the organisation checked on the rows (see `history`).
    for chunk in pks.chunks(500) {
        rows.extend(
            epcis_event::Entity::find()
                .filter(epcis_event::Column::Pk.is_in(chunk.to_vec()))
                .all(db)
                .await?,
        );
    }
    rows.retain(|r| r.organisation_id == org);
    rows.sort_by_key(|r| (r.event_time_ms, r.pk));
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        // Typed, so the answer keeps the CBV member order (see `EventListBody`).
        let mut e: EpcisEvent =
            serde_json::from_str(&r.body).map_err(|e| DbErr::Custom(e.to_string()))?;
        e.record_time = Some(format_time_ms(r.record_time_ms));
        render(&mut e, format, gcp)?;
        events.push(e);
    }
    Ok(EpcisQueryDocument::new(
        format_time_ms(chrono::Utc::now().timestamp_millis()),
        events,
    ))
}

/// The events naming an object (each with its role), oldest first.
async fn links(
    db: &DatabaseConnection,
    org: &str,
    key: &str,
) -> Result<Vec<epcis_event_epc::Model>, DbErr> {
    epcis_event_epc::Entity::find()
        .filter(epcis_event_epc::Column::OrganisationId.eq(org))
        .filter(epcis_event_epc::Column::EpcKey.eq(key))
        .order_by_asc(epcis_event_epc::Column::EventTimeMs)
        .order_by_asc(epcis_event_epc::Column::EventPk)
        .limit(MAX_LIMIT * 10)
        .all(db)
        .await
}

/// Event times from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    from: i64,
    to: i64,
}

impl Window {
    const ALL: Window = Window {
        from: i64::MIN,
        to: i64::MAX,
    };

    fn contains(self, t: i64) -> bool {
        self.from <= t && t <= self.to
    }

    fn within(self, outer: Window) -> Option<Window> {
        let w = Window {
            from: std::cmp::max(self.from, outer.from),
            to: std::cmp::min(self.to, outer.to),
        };
        (w.from <= w.to).then_some(w)
    }
}

/// The containers `obj` was directly inside during `window`, each with when: read from
/// its aggregation events and its state.
async fn containers(
    db: &DatabaseConnection,
    org: &str,
    obj: &str,
    obj_links: &[epcis_event_epc::Model],
    window: Window,
) -> Result<Vec<(String, Window)>, DbErr> {
    let pks: Vec<i64> = obj_links.iter().map(|l| l.event_pk).collect();
    let mut moves: BTreeMap<i64, Move> = BTreeMap::new();
    for chunk in pks.chunks(500) {
        // By key alone, the organisation checked on the rows: with both in the statement
        // SQLite chose the organisation's index for a long key list (every event of it:
        // 3 s at 10 million events).
        let heads: Vec<(i64, String, Option<String>, String)> = epcis_event::Entity::find()
            .select_only()
            .column(epcis_event::Column::Pk)
            .column(epcis_event::Column::Action)
            .column(epcis_event::Column::BizStep)
            .column(epcis_event::Column::OrganisationId)
            .filter(epcis_event::Column::Pk.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        let parents: BTreeMap<i64, String> = epcis_event_epc::Entity::find()
            .filter(epcis_event_epc::Column::EventPk.is_in(chunk.to_vec()))
            .filter(epcis_event_epc::Column::Role.eq(ROLE_PARENT))
            .all(db)
            .await?
            .into_iter()
            .filter(|l| l.organisation_id == org)
            .map(|l| (l.event_pk, l.epc_key))
            .collect();
        for (pk, action, step, _) in heads.into_iter().filter(|h| h.3 == org) {
            let m = match (parents.get(&pk), action.as_str()) {
                (Some(p), "ADD") => Move::Into(p.clone()),
                (Some(p), "DELETE") => Move::OutOf(p.clone()),
                _ if step.as_deref() == Some("receiving") => Move::Received,
                _ => continue,
            };
            moves.insert(pk, m);
        }
    }
    let steps: Vec<(i64, &Move)> = obj_links
        .iter()
        .filter(|l| l.role == ROLE_CHILD || l.role == ROLE_EPC)
        .filter_map(|l| Some((l.event_time_ms, moves.get(&l.event_pk)?)))
        .collect();
    let now_inside = trace_object::Entity::find_by_id((org.to_owned(), obj.to_owned()))
        .one(db)
        .await?
        .and_then(|o| o.parent_key);
    Ok(containment(&steps, now_inside.as_deref(), window))
}

/// What an event does to an object's place in the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Move {
    /// Packed into the container (aggregation ADD).
    Into(String),
    /// Taken out of it (aggregation DELETE).
    OutOf(String),
    /// Received loose: inside nothing any more (a returned pack).
    Received,
}

/// The containers an object was inside, and when, from its moves in time order and the
/// container its state names now. A DELETE with no ADD before it means the object was
/// inside since its previous move (or since before swt knew it: contents inferred from
/// the supplier's data on receipt); so does a container the state names that no ADD
/// explains.
fn containment(
    steps: &[(i64, &Move)],
    now_inside: Option<&str>,
    window: Window,
) -> Vec<(String, Window)> {
    let mut out = Vec::new();
    let mut open: Option<(String, i64)> = None;
    // When the object last moved: an unexplained containment starts no earlier.
    let mut since = i64::MIN;
    for &(t, m) in steps {
        let closed = match (m, open.take()) {
            (Move::OutOf(p), None) => Some((p.clone(), since)),
            (Move::OutOf(p), Some((q, from))) if *p != q => {
                // Out of a container it was not known to be in: a data problem the
                // projection reports; the open containment stands.
                open = Some((q, from));
                None
            }
            (_, was) => was,
        };
        if let Some((p, from)) = closed {
            out.push((p, Window { from, to: t }));
        }
        if let Move::Into(p) = m {
            open = Some((p.clone(), t));
        }
        since = t;
    }
    match (open, now_inside) {
        (Some((p, from)), _) => out.push((p, Window { from, to: i64::MAX })),
        (None, Some(p)) => out.push((
            p.to_owned(),
            Window {
                from: since,
                to: i64::MAX,
            },
        )),
        (None, None) => {}
    }
    out.into_iter()
        .filter_map(|(p, w)| Some((p, w.within(window)?)))
        .collect()
}

/// What is inside a container, one page, depth first (see [`ContainerContents`]).
///
/// The page is walked with a stack of (container, last child listed) frames, which is
/// also the cursor, so the next page starts where this one stopped without walking the
/// tree again. Each step is a range of `ix_trace_object_parent`: a container's next
/// children, as many as the page still has room for. Only objects flagged `holds` are
/// descended into, and children fetched but not yet listed wait in their frame while
/// the walk is below it, so a page of a pallet costs one statement per case listed.
/// Objects moved between two pages' requests may be listed twice or not at all, as with
/// any keyset paging.
pub async fn contents(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    q: &ContentsQuery,
) -> Result<ContainerContents, TraceError> {
    let container = object(db, org, id).await?;
    let max_depth = q.max_depth.unwrap_or(MAX_DEPTH).clamp(1, MAX_DEPTH) as usize;
    let n = limit(q.limit) as usize;
    let mut stack = match &q.cursor {
        Some(c) => resume_contents(&container.id, c, max_depth)?,
        None => vec![Frame::new(container.id.clone(), None)],
    };
    let mut items = Vec::with_capacity(n);
    while items.len() < n {
        let depth = stack.len();
        let Some(frame) = stack.last_mut() else { break };
        if frame.pending.is_empty() && !frame.exhausted {
            let want = n - items.len();
            let children =
                children_after(db, org, &frame.parent, frame.after.as_deref(), want).await?;
            frame.exhausted = children.len() < want;
            frame.pending = children.into();
        }
        let Some(child) = frame.pending.pop_front() else {
            stack.pop();
            continue;
        };
        frame.after = Some(child.epc_key.clone());
        let descend = (child.holds && depth < max_depth).then(|| child.epc_key.clone());
        items.push(ContentsEntry {
            object: object_dto(child),
            depth: depth as u32,
        });
        if let Some(key) = descend {
            stack.push(Frame::new(key, None));
        }
    }
    let next_cursor = if more_contents(db, org, &stack).await? {
        Some(contents_cursor(&stack))
    } else {
        None
    };
    Ok(ContainerContents {
        container,
        items,
        next_cursor,
    })
}

/// Deepest explosion (pallet → case → inner pack → pack is 3; the margin is for unusual
/// hierarchies, and a bound for a corrupt parent cycle).
const MAX_DEPTH: u32 = 8;

/// A container being listed and the last of its direct children already listed.
struct Frame {
    parent: String,
    after: Option<String>,
    /// Children fetched after `after` and not listed yet (this request only).
    pending: std::collections::VecDeque<trace_object::Model>,
    /// The last fetch reached the end of the children: nothing follows `pending`.
    exhausted: bool,
}

impl Frame {
    fn new(parent: String, after: Option<String>) -> Self {
        Self {
            parent,
            after,
            pending: Default::default(),
            exhausted: false,
        }
    }
}

/// The cursor: each frame's last child listed, outermost first (base64url of a JSON
/// array; the frame below each is that child's contents). A trailing null means the
/// page ended on a container whose contents come next.
fn contents_cursor(stack: &[Frame]) -> String {
    let afters: Vec<Option<&str>> = stack.iter().map(|f| f.after.as_deref()).collect();
    crate::http::page::encode(&afters)
}

/// The stack a [`contents_cursor`] describes, below the container `root`.
fn resume_contents(root: &str, cursor: &str, max_depth: usize) -> Result<Vec<Frame>, TraceError> {
    let bad = || TraceError::BadRequest(format!("bad cursor {cursor:?}"));
    let afters: Vec<Option<String>> = crate::http::page::decode(cursor)?;
    if afters.is_empty() || afters.len() > max_depth {
        return Err(bad());
    }
    let mut stack = Vec::with_capacity(afters.len());
    let mut parent = root.to_owned();
    let last = afters.len() - 1;
    for (i, after) in afters.into_iter().enumerate() {
        // Only the innermost frame may have listed nothing yet.
        let after = match after {
            Some(a) => Some(key(&a)?.key()),
            None if i == last => None,
            None => return Err(bad()),
        };
        let next = after.clone();
        stack.push(Frame::new(parent, after));
        parent = next.unwrap_or_default();
    }
    Ok(stack)
}

/// Whether anything is left after the stack's position (an emptied container still
/// flagged as a holder is checked, not assumed to hold something).
async fn more_contents(
    db: &DatabaseConnection,
    org: &str,
    stack: &[Frame],
) -> Result<bool, TraceError> {
    for f in stack.iter().rev() {
        if !f.pending.is_empty() {
            return Ok(true);
        }
        if !f.exhausted
            && !children_after(db, org, &f.parent, f.after.as_deref(), 1)
                .await?
                .is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The next `n` direct children of `parent` after `after`, in identifier order (the
/// order of `ix_trace_object_parent`, so a range scan with no sort).
async fn children_after(
    db: &DatabaseConnection,
    org: &str,
    parent: &str,
    after: Option<&str>,
    n: usize,
) -> Result<Vec<trace_object::Model>, TraceError> {
    let n = u64::try_from(n).unwrap_or(u64::MAX);
    if crate::db::Policy::of(db).pages_as_json() {
        return children_after_sqlite(db, org, parent, after, n).await;
    }
    let mut sel = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::ParentKey.eq(parent));
    if let Some(a) = after {
        sel = sel.filter(trace_object::Column::EpcKey.gt(a));
    }
    Ok(sel
        .order_by_asc(trace_object::Column::ParentKey)
        .order_by_asc(trace_object::Column::EpcKey)
        .limit(n)
        .all(db)
        .await?)
}

/// [`children_after`] on SQLite, as one row: the driver hands each result row from its
/// database thread to the caller's task with a wake-up, ~20 µs a row, which made a page
/// of 500 cost 12 ms; the same rows as one JSON array from SQLite cost one hand-over.
async fn children_after_sqlite(
    db: &DatabaseConnection,
    org: &str,
    parent: &str,
    after: Option<&str>,
    n: u64,
) -> Result<Vec<trace_object::Model>, TraceError> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        crate::projection::UnitStatus,
        Option<String>,
        Option<String>,
        i64,
        Option<String>,
        i64,
        bool,
    );
    let sql = format!(
        "SELECT json_group_array(json_array(epc_key, kind, gtin, serial, sscc, lot, expiry, \
         site_id, location, status, parent_key, order_ref, last_event_time_ms, last_scan_id, \
         updated_at_ms, json(iif(holds, 'true', 'false'))) ORDER BY epc_key) AS page \
         FROM (SELECT * FROM trace_object \
         WHERE organisation_id = ? AND parent_key = ? {} ORDER BY parent_key, epc_key LIMIT ?)",
        if after.is_some() {
            "AND epc_key > ?"
        } else {
            ""
        }
    );
    let mut values: Vec<sea_orm::Value> = vec![org.into(), parent.into()];
    if let Some(a) = after {
        values.push(a.into());
    }
    values.push(i64::try_from(n).unwrap_or(i64::MAX).into());
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            crate::db::Policy::of(db).backend(),
            sql,
            values,
        ))
        .await?;
    let json: String = match row {
        Some(r) => r.try_get("", "page")?,
        None => return Ok(Vec::new()),
    };
    let rows: Vec<Row> =
        serde_json::from_str(&json).map_err(|e| DbErr::Custom(format!("children page: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|r| trace_object::Model {
            organisation_id: org.to_owned(),
            epc_key: r.0,
            kind: r.1,
            gtin: r.2,
            serial: r.3,
            sscc: r.4,
            lot: r.5,
            expiry: r.6,
            site_id: r.7,
            location: r.8,
            status: r.9,
            parent_key: r.10,
            order_ref: r.11,
            last_event_time_ms: r.12,
            last_scan_id: r.13,
            updated_at_ms: r.14,
            holds: r.15,
        })
        .collect())
}

/// Where a lot's packs are now: counts by site, location and status (from `stock_level`,
/// the lot's few rows).
pub async fn lot(
    db: &DatabaseConnection,
    org: &str,
    lot: &str,
    gtin: Option<&str>,
) -> Result<LotWhereabouts, TraceError> {
    let mut sel = stock_level::Entity::find()
        .select_only()
        .column(stock_level::Column::SiteId)
        .column(stock_level::Column::Location)
        .column(stock_level::Column::Status)
        .column_as(units_total(), "n")
        .filter(stock_level::Column::OrganisationId.eq(org))
        .filter(stock_level::Column::Lot.eq(lot))
        .filter(stock_level::Column::Units.gt(0));
    if let Some(g) = gtin {
        sel = sel.filter(stock_level::Column::Gtin.eq(g));
    }
    let rows: Vec<(String, String, String, i64)> = sel
        .group_by(stock_level::Column::SiteId)
        .group_by(stock_level::Column::Location)
        .group_by(stock_level::Column::Status)
        .order_by_asc(stock_level::Column::SiteId)
        .order_by_asc(stock_level::Column::Location)
        .order_by_asc(stock_level::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    if rows.is_empty() {
        return Err(TraceError::NotFound(format!("lot {lot}")));
    }
    let places: Vec<LotPlace> = rows
        .into_iter()
        .map(|(site_id, location, status, n)| LotPlace {
            site_id: present(site_id),
            location: present(location),
            status,
            count: u64::try_from(n).unwrap_or(0),
        })
        .collect();
    Ok(LotWhereabouts {
        lot: lot.to_owned(),
        gtin: gtin.map(str::to_owned),
        total: places.iter().map(|p| p.count).sum(),
        places,
    })
}

/// The packs of the `stock_level` rows grouped: an integer on both back-ends (PostgreSQL
/// sums `bigint` to `numeric`).
pub fn units_total() -> Expr {
    Func::cast_as(
        Expr::col(stock_level::Column::Units).sum(),
        sea_orm::sea_query::Alias::new("bigint"),
    )
    .into()
}

/// `stock_level` keeps an absent value as `''`.
pub fn present(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

/// The `stock_level` rows a stock query covers (non-zero counts only).
pub fn stock_levels(org: &str, q: &StockQuery) -> sea_orm::Select<stock_level::Entity> {
    let mut sel = stock_level::Entity::find()
        .filter(stock_level::Column::OrganisationId.eq(org))
        .filter(stock_level::Column::Units.gt(0));
    if let Some(g) = &q.gtin {
        sel = sel.filter(stock_level::Column::Gtin.eq(g.as_str()));
    }
    if let Some(l) = &q.lot {
        sel = sel.filter(stock_level::Column::Lot.eq(l.as_str()));
    }
    if let Some(s) = &q.status {
        sel = sel.filter(stock_level::Column::Status.eq(s.as_str()));
    }
    if let Some(s) = &q.site_id {
        sel = sel.filter(stock_level::Column::SiteId.eq(s.as_str()));
    }
    if let Some(l) = &q.location {
        sel = sel.filter(stock_level::Column::Location.eq(l.as_str()));
    }
    if let Some(e) = &q.expiry_before {
        // ISO dates compare correctly as text; `''` is no expiry at all.
        sel = sel
            .filter(stock_level::Column::Expiry.ne(""))
            .filter(stock_level::Column::Expiry.lt(e.as_str()));
    }
    sel
}

/// Stock of serialized packs by GTIN, lot, expiry and status, one page in that order
/// (absent values sort first, as `''`). Reads `stock_level`: a few thousand rows however
/// many packs there are.
pub async fn stock(
    db: &DatabaseConnection,
    org: &str,
    q: &StockQuery,
) -> Result<Page<StockLine>, TraceError> {
    let n = limit(q.limit);
    let key = [
        stock_level::Column::Gtin,
        stock_level::Column::Lot,
        stock_level::Column::Expiry,
        stock_level::Column::Status,
    ];
    let mut sel = stock_levels(org, q)
        .select_only()
        .columns(key)
        .column_as(units_total(), "n");
    if let Some(c) = &q.cursor {
        // Groups after the last one listed: grouping keys compared as one tuple.
        let after: [String; 4] = crate::http::page::decode(c)?;
        sel = sel.filter(Expr::tuple(key.map(Expr::col)).gt(Expr::tuple(after.map(Expr::val))));
    }
    for c in key {
        sel = sel.group_by(c).order_by_asc(c);
    }
    let rows: Vec<(String, String, String, String, i64)> =
        sel.limit(n + 1).into_tuple().all(db).await?;
    let lines = rows
        .into_iter()
        .map(|(gtin, lot, expiry, status, n)| StockLine {
            gtin: present(gtin),
            lot: present(lot),
            expiry: present(expiry),
            status,
            count: u64::try_from(n).unwrap_or(0),
        })
        .collect();
    Ok(Page::from_rows(lines, n, |l: &StockLine| {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            text(&l.gtin),
            text(&l.lot),
            text(&l.expiry),
            l.status.clone(),
        ]
    }))
}

async fn exception_dto(
    db: &impl sea_orm::ConnectionTrait,
    e: trace_exception::Model,
) -> Result<ExceptionView, DbErr> {
    let scans: Vec<String> = trace_exception_scan::Entity::find()
        .select_only()
        .column(trace_exception_scan::Column::ScanId)
        .filter(trace_exception_scan::Column::ExceptionId.eq(e.id.clone()))
        .order_by_asc(trace_exception_scan::Column::ScanId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ExceptionView {
        id: e.id,
        kind: e.kind,
        state: e.state,
        object: e.epc_key,
        site_id: e.site_id,
        detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
        scans,
        created_at: format_time_ms(e.created_at_ms),
        resolved_at: e.resolved_at_ms.map(format_time_ms),
        resolved_by: e.resolved_by,
        resolution: e.resolution,
        assigned_to: e.assigned_to,
    })
}

/// Exceptions, newest first, filtered by state and kind.
pub async fn exceptions(
    db: &DatabaseConnection,
    org: &str,
    q: &ExceptionQuery,
) -> Result<Page<ExceptionView>, TraceError> {
    let n = limit(q.limit);
    let mut sel =
        trace_exception::Entity::find().filter(trace_exception::Column::OrganisationId.eq(org));
    if let Some(s) = &q.state {
        sel = sel.filter(trace_exception::Column::State.eq(s.as_str()));
    }
    if let Some(k) = &q.kind {
        sel = sel.filter(trace_exception::Column::Kind.eq(k.as_str()));
    }
    if let Some(c) = &q.cursor {
        let (t, id) = parse_cursor(c)?;
        let (tc, ic) = (
            trace_exception::Column::CreatedAtMs,
            trace_exception::Column::Id,
        );
        sel = sel.filter(
            Condition::any()
                .add(tc.lt(t))
                .add(Condition::all().add(tc.eq(t)).add(ic.lt(id))),
        );
    }
    let rows = sel
        .order_by_desc(trace_exception::Column::CreatedAtMs)
        .order_by_desc(trace_exception::Column::Id)
        .limit(n + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > n;
    let rows: Vec<_> = rows.into_iter().take(n as usize).collect();
    let next_cursor = if more {
        rows.last().map(|e| format!("{}.{}", e.created_at_ms, e.id))
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for e in rows {
        items.push(exception_dto(db, e).await?);
    }
    Ok(Page { items, next_cursor })
}

/// One exception.
pub async fn exception(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
) -> Result<ExceptionView, TraceError> {
    let e = trace_exception::Entity::find_by_id(id.to_owned())
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .one(db)
        .await?
        .ok_or_else(|| TraceError::NotFound(format!("exception {id}")))?;
    Ok(exception_dto(db, e).await?)
}

/// Marks an exception resolved by `user` with a note. Exactly one resolver wins.
pub async fn resolve(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    user: &str,
    resolution: &str,
) -> Result<ExceptionView, TraceError> {
    // It reads, then writes: on SQLite it takes the write lock first (IMMEDIATE), as a
    // deferred transaction would be refused its upgrade when another writer came between.
    let _turn = crate::db::Policy::of(db)
        .write_turn(crate::db::Writer::Background)
        .await;
    let txn = db
        .begin_with_options(crate::projection::write_txn_options())
        .await?;
    let e = trace_exception::Entity::find_by_id(id.to_owned())
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .one(&txn)
        .await?
        .ok_or_else(|| TraceError::NotFound(format!("exception {id}")))?;
    // Conditional update: of two managers resolving at once, one gets "already resolved".
    let done = trace_exception::Entity::update_many()
        .col_expr(trace_exception::Column::State, Expr::value("resolved"))
        .col_expr(
            trace_exception::Column::ResolvedAtMs,
            Expr::value(chrono::Utc::now().timestamp_millis()),
        )
        .col_expr(trace_exception::Column::ResolvedBy, Expr::value(user))
        .col_expr(trace_exception::Column::Resolution, Expr::value(resolution))
        .filter(trace_exception::Column::Id.eq(e.id.clone()))
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .filter(trace_exception::Column::State.eq("open"))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        return Err(TraceError::AlreadyResolved(id.to_owned()));
    }
    let e = trace_exception::Entity::find_by_id(id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| TraceError::NotFound(format!("exception {id}")))?;
    let view = exception_dto(&txn, e.clone()).await?;
    // Ordered with the other outcomes of the task whose scan opened it: the opener is the
    // last part of the dedup key (`kind:object:scan`; scan ids hold no colon).
    let opener = e
        .dedup_key
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let task = projected_scan::Entity::find_by_id((org.to_owned(), opener))
        .one(&txn)
        .await?
        .map(|p| p.document_id);
    crate::outbox::record(
        &txn,
        org,
        vec![crate::outbox::Outcome {
            kind: crate::outbox::OutcomeKind::ExceptionResolved,
            stream: task.clone().unwrap_or_else(|| format!("exception:{id}")),
            data: serde_json::json!({
                "exception_id": view.id,
                "kind": view.kind,
                "object": view.object,
                "site_id": view.site_id,
                "task_id": task,
                "resolved_by": view.resolved_by,
                "resolution": view.resolution,
                "resolved_at": view.resolved_at,
            }),
        }],
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    txn.commit().await?;
    Ok(view)
}

/// What was done about exceptions (assigned, commented), oldest first, for `ids`.
pub async fn exception_notes(
    db: &DatabaseConnection,
    org: &str,
    ids: &[String],
) -> Result<Vec<exception_note::Model>, TraceError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(exception_note::Entity::find()
        .filter(exception_note::Column::OrganisationId.eq(org))
        .filter(exception_note::Column::ExceptionId.is_in(ids.iter().cloned()))
        .order_by_asc(exception_note::Column::AtMs)
        .order_by_asc(exception_note::Column::Id)
        .all(db)
        .await?)
}

/// Longest comment kept.
pub const MAX_NOTE: usize = 2000;

/// Assigns an open exception to a user of the organisation (`None`: nobody), and records
/// who did it. A resolved exception is not reassigned.
pub async fn assign(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    by: &str,
    assignee: Option<&str>,
) -> Result<(), TraceError> {
    let name = match assignee {
        Some(user) => Some(
            app_user::Entity::find_by_id(user.to_owned())
                .filter(app_user::Column::OrganisationId.eq(org))
                .filter(app_user::Column::Disabled.eq(false))
                .one(db)
                .await?
                .ok_or_else(|| TraceError::BadRequest(format!("no active user {user} here")))?
                .display_name,
        ),
        None => None,
    };
    let txn = db.begin().await?;
    let done = trace_exception::Entity::update_many()
        .col_expr(
            trace_exception::Column::AssignedTo,
            Expr::value(assignee.map(str::to_owned)),
        )
        .filter(trace_exception::Column::Id.eq(id))
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .filter(trace_exception::Column::State.eq("open"))
        .exec(&txn)
        .await?;
    if done.rows_affected == 0 {
        return Err(missing_or_resolved(&txn, org, id).await?);
    }
    add_note(
        &txn,
        org,
        id,
        by,
        "assign",
        &name.map_or_else(|| "unassigned".to_owned(), |n| format!("assigned to {n}")),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Adds a comment to an exception (open or resolved: a later finding still belongs to it).
pub async fn comment(
    db: &DatabaseConnection,
    org: &str,
    id: &str,
    by: &str,
    note: &str,
) -> Result<(), TraceError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE {
        return Err(TraceError::BadRequest(format!(
            "a comment is 1 to {MAX_NOTE} characters"
        )));
    }
    let txn = db.begin().await?;
    let found = trace_exception::Entity::find_by_id(id.to_owned())
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .one(&txn)
        .await?;
    if found.is_none() {
        return Err(TraceError::NotFound(format!("exception {id}")));
    }
    add_note(&txn, org, id, by, "comment", note).await?;
    txn.commit().await?;
    Ok(())
}

async fn add_note(
    txn: &sea_orm::DatabaseTransaction,
    org: &str,
    id: &str,
    by: &str,
    action: &str,
    note: &str,
) -> Result<(), DbErr> {
    use sea_orm::ActiveValue::Set;
    exception_note::Entity::insert(exception_note::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(org.to_owned()),
        exception_id: Set(id.to_owned()),
        at_ms: Set(chrono::Utc::now().timestamp_millis()),
        user_id: Set(by.to_owned()),
        action: Set(action.to_owned()),
        note: Set(note.to_owned()),
    })
    .exec(txn)
    .await?;
    Ok(())
}

/// Why an update of an open exception changed nothing: it does not exist here, or it is
/// resolved.
async fn missing_or_resolved(
    txn: &sea_orm::DatabaseTransaction,
    org: &str,
    id: &str,
) -> Result<TraceError, DbErr> {
    let found = trace_exception::Entity::find_by_id(id.to_owned())
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .one(txn)
        .await?;
    Ok(match found {
        Some(_) => TraceError::AlreadyResolved(id.to_owned()),
        None => TraceError::NotFound(format!("exception {id}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from: i64, to: i64) -> Window {
        Window { from, to }
    }

    #[test]
    fn a_pack_is_inside_from_packing_to_unpacking() {
        let (into, out) = (Move::Into("sscc:1".into()), Move::OutOf("sscc:1".into()));
        assert_eq!(
            containment(&[(10, &into), (20, &out)], None, Window::ALL),
            [("sscc:1".to_owned(), w(10, 20))]
        );
        // Still inside: until now.
        assert_eq!(
            containment(&[(10, &into)], Some("sscc:1"), Window::ALL),
            [("sscc:1".to_owned(), w(10, i64::MAX))]
        );
        // Received loose (a return): inside no more, whatever the state says.
        assert_eq!(
            containment(&[(10, &into), (30, &Move::Received)], None, Window::ALL),
            [("sscc:1".to_owned(), w(10, 30))]
        );
    }

    #[test]
    fn inferred_contents_were_inside_since_before_swt_knew_them() {
        let case_out = Move::OutOf("sgtin:case".into());
        let into = Move::Into("sscc:out".into());
        // Unpacked from a case it was never packed into (supplier data), then packed.
        assert_eq!(
            containment(&[(5, &case_out), (8, &into)], Some("sscc:out"), Window::ALL),
            [
                ("sgtin:case".to_owned(), w(i64::MIN, 5)),
                ("sscc:out".to_owned(), w(8, i64::MAX))
            ]
        );
        // Never scanned: inside what the state names, all along.
        assert_eq!(
            containment(&[], Some("sgtin:case"), Window::ALL),
            [("sgtin:case".to_owned(), Window::ALL)]
        );
        // A container's window bounds its contents' containment.
        assert_eq!(
            containment(&[(5, &case_out)], None, w(0, 3)),
            [("sgtin:case".to_owned(), w(0, 3))]
        );
        assert!(containment(&[(5, &case_out)], None, w(6, 9)).is_empty());
    }
}
