//! What must hold after a fault: every acknowledged scan is in the server's stored
//! document, and the projection wrote one event per scan, never two (besides the
//! commissioning that records a pack's lot and expiry when first seen, at most once).

use std::collections::{BTreeMap, BTreeSet};

use automerge::ActorId;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use swt_domain::model::ScanId;
use swt_server::db::entity::epcis_event;
use swt_server::tasks::documents;
use swt_tests::projected;

/// Fails naming the first missing scans unless every acknowledged scan is in its stored
/// document (read from the database, as a restarted server would).
pub async fn acked_are_stored(
    db: &DatabaseConnection,
    acked: &[(String, ScanId)],
) -> anyhow::Result<()> {
    let mut by_task: BTreeMap<&str, Vec<&ScanId>> = BTreeMap::new();
    for (task, id) in acked {
        by_task.entry(task).or_default().push(id);
    }
    for (task, ids) in by_task {
        let (_, doc) = documents::load(db, task, &ActorId::random())
            .await?
            .ok_or_else(|| anyhow::anyhow!("task document {task} is gone"))?;
        let missing: Vec<&str> = ids
            .iter()
            .filter(|id| !doc.has_scan(id))
            .map(|id| id.as_str())
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "LOST: {} of {} acknowledged scans of task {task} are not on the server, e.g. {:?}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(5)]
        );
    }
    Ok(())
}

/// How many EPCIS events of `kind` each scan of the tasks got.
async fn events_per_scan(
    db: &DatabaseConnection,
    tasks: &[String],
    kind: sea_orm::Condition,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let rows: Vec<Option<String>> = epcis_event::Entity::find()
        .select_only()
        .column(epcis_event::Column::ScanId)
        .filter(epcis_event::Column::DocumentId.is_in(tasks.iter().map(String::as_str)))
        .filter(kind)
        .into_tuple()
        .all(db)
        .await?;
    let mut per_scan = BTreeMap::new();
    for id in rows {
        *per_scan.entry(id.unwrap_or_default()).or_default() += 1;
    }
    Ok(per_scan)
}

/// Fails if any scan of the tasks was projected into more than one event (so far).
pub async fn no_double_projection(db: &DatabaseConnection, tasks: &[String]) -> anyhow::Result<()> {
    // A scan's own event once, and the commissioning of a first-seen pack at most once.
    let commissioned = sea_orm::Condition::all().add(projected::own_operation().not());
    let doubles: Vec<(String, u64)> = events_per_scan(db, tasks, projected::own_operation())
        .await?
        .into_iter()
        .filter(|(_, n)| *n != 1)
        .chain(
            events_per_scan(db, tasks, commissioned)
                .await?
                .into_iter()
                .filter(|(_, n)| *n > 1),
        )
        .collect();
    anyhow::ensure!(
        doubles.is_empty(),
        "DOUBLE PROJECTION: {} scans have more than one event (or events without a scan), e.g. {:?}",
        doubles.len(),
        &doubles[..doubles.len().min(5)]
    );
    Ok(())
}

/// Waits for the projection of every scan in `all`, then fails unless each got exactly
/// one event and one projected-scan mark, and no other scan did.
pub async fn projected_exactly_once(
    db: &DatabaseConnection,
    tasks: &[String],
    all: &[(String, ScanId)],
) -> anyhow::Result<()> {
    for task in tasks {
        let expected = u64::try_from(all.iter().filter(|(t, _)| t == task).count())?;
        let (scans, events) = projected::wait_for(db, task, expected).await?;
        anyhow::ensure!(
            (scans, events) == (expected, expected),
            "task {task}: {expected} scans acknowledged, {scans} marked projected, {events} events"
        );
    }
    let per_scan = events_per_scan(db, tasks, projected::own_operation()).await?;
    let wanted: BTreeSet<&str> = all.iter().map(|(_, id)| id.as_str()).collect();
    let got: BTreeSet<&str> = per_scan.keys().map(String::as_str).collect();
    let lost: Vec<&&str> = wanted.difference(&got).take(5).collect();
    let extra: Vec<&&str> = got.difference(&wanted).take(5).collect();
    anyhow::ensure!(
        lost.is_empty() && extra.is_empty(),
        "events do not match the acknowledged scans: without event {lost:?}, unexpected {extra:?}"
    );
    no_double_projection(db, tasks).await
}
