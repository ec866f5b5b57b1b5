//! `swt demo` seeds a warehouse a manager can explore: stock in several states, shipped
//! orders, open and resolved exceptions, passing and failing return verifications, a
//! recalled lot, an expired pack and scanners that last synced at different times, all
//! through tasks, scanner sync and the projection; and a second run adds nothing. On both
//! back-ends.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use swt_server::db::entity::trace_object::UnitStatus;
use swt_server::db::entity::{
    epcis_event, projected_scan, return_verification, sync_state, trace_exception, trace_object,
    verification_lot,
};
use swt_server::demo;
use swt_server::returns::ReturnState;
use swt_tests::{TestDb, test_config};

/// Everything the seed counts, to compare two runs.
async fn counts(db: &DatabaseConnection) -> anyhow::Result<Vec<u64>> {
    Ok(vec![
        trace_object::Entity::find().count(db).await?,
        epcis_event::Entity::find().count(db).await?,
        projected_scan::Entity::find().count(db).await?,
        trace_exception::Entity::find().count(db).await?,
        trace_exception::Entity::find()
            .filter(trace_exception::Column::State.eq("resolved"))
            .count(db)
            .await?,
        return_verification::Entity::find().count(db).await?,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_seeds_a_warehouse_through_the_real_path_once() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    let report = demo::seed_with_activity(&db).await?;
    assert!(report.tasks_created > 30, "{report:?}");
    let summary = demo::summary(&db).await?;
    assert!(summary.open_tasks > 0 && summary.open_tasks < summary.tasks);

    // Stock in several states.
    let objects = trace_object::Entity::find().all(&db).await?;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &objects {
        *by_status.entry(o.status.as_str()).or_default() += 1;
    }
    for status in ["in_stock", "shipped", "picked", "returned", "quarantined"] {
        assert!(
            by_status.get(status).is_some_and(|n| *n > 0),
            "{status}: {by_status:?}"
        );
    }
    let packs = objects.iter().filter(|o| o.kind == "sgtin").count();
    assert!((300..5000).contains(&packs), "{packs} packs");

    // Shipped packs carry their order.
    let shipped: Vec<_> = objects
        .iter()
        .filter(|o| o.status == UnitStatus::Shipped && o.kind == "sgtin")
        .collect();
    assert!(shipped.len() > 50);
    assert!(
        shipped
            .iter()
            .all(|o| o.order_ref.as_deref().is_some_and(|r| r.starts_with("SO-"))),
        "every shipped pack names its order"
    );
    // Events carry the scanners' backdated times: about three weeks.
    let oldest = epcis_event::Entity::find()
        .all(&db)
        .await?
        .iter()
        .map(|e| e.event_time_ms)
        .min()
        .unwrap_or(i64::MAX);
    let age_days = (chrono::Utc::now().timestamp_millis() - oldest) / 86_400_000;
    assert!(
        (18..=25).contains(&age_days),
        "oldest event {age_days} days old"
    );

    // Open and resolved exceptions, from the projection.
    let exceptions = trace_exception::Entity::find().all(&db).await?;
    let kinds: BTreeSet<(&str, &str)> = exceptions
        .iter()
        .map(|e| (e.kind.as_str(), e.state.as_str()))
        .collect();
    assert!(kinds.contains(&("double_pick", "open")), "{kinds:?}");
    assert!(kinds.contains(&("double_pick", "resolved")), "{kinds:?}");
    assert!(kinds.iter().any(|(_, s)| *s == "resolved"));

    // Return verifications, passing and failing.
    let returns = return_verification::Entity::find().all(&db).await?;
    assert!(
        returns
            .iter()
            .any(|r| r.state == ReturnState::Sellable && r.verified == Some(true))
    );
    assert!(
        returns
            .iter()
            .any(|r| r.state == ReturnState::Quarantined && r.verified == Some(false))
    );

    // The recalled lot has packs in the warehouse; a pack has expired.
    let recalled = verification_lot::Entity::find()
        .filter(verification_lot::Column::Recalled.eq(true))
        .all(&db)
        .await?;
    assert!(
        recalled.iter().any(|l| objects
            .iter()
            .any(|o| o.gtin.as_deref() == Some(l.gtin.as_str())
                && o.lot.as_deref() == Some(l.lot.as_str()))),
        "a recalled lot with known packs"
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        objects.iter().any(|o| o.status == UnitStatus::InStock
            && o.expiry.as_deref().is_some_and(|e| e < today.as_str())),
        "an expired pack in stock"
    );

    // Scanners last synced at different times.
    let mut last: BTreeMap<String, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for s in sync_state::Entity::find().all(&db).await? {
        let t = last.entry(s.device_id).or_insert(s.updated_at);
        *t = (*t).max(s.updated_at);
    }
    let times: BTreeSet<_> = last.values().collect();
    assert_eq!(times.len(), demo::DEVICES.len(), "{last:?}");

    // The stock counts the database keeps agree with the packs, pack for pack.
    assert_eq!(
        swt_tests::stock::assert_consistent(&db).await?,
        packs as i64
    );

    // A second run adds nothing.
    let before = counts(&db).await?;
    let again = demo::seed_with_activity(&db).await?;
    assert_eq!((again.inserted, again.tasks_created), (0, 0));
    assert_eq!(counts(&db).await?, before);
    assert_eq!(demo::summary(&db).await?, summary);
    swt_tests::stock::assert_consistent(&db).await?;

    // A database that had stock before the counts existed gets them counted: the
    // migrations from the one that made them undone (table and triggers gone), then run.
    use swt_migrations::MigratorTrait as _;
    let since = swt_migrations::Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261210_000001_stock_level")
        .ok_or_else(|| anyhow::anyhow!("no stock_level migration"))?;
    swt_migrations::Migrator::down(&db, Some(u32::try_from(since + 1)?)).await?;
    assert!(
        swt_server::db::entity::stock_level::Entity::find()
            .count(&db)
            .await
            .is_err(),
        "stock_level is gone"
    );
    swt_migrations::Migrator::up(&db, None).await?;
    assert_eq!(
        swt_tests::stock::assert_consistent(&db).await?,
        packs as i64
    );

    db.close().await?;
    tdb.close().await?;
    Ok(())
}
