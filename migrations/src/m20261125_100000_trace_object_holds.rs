//! `trace_object.holds`: whether anything was ever packed into the object. The container
//! explosion descends only into holders, so listing a case's 100 packs no longer asks,
//! pack by pack, whether each holds something. The flag is set by whoever sets a
//! `parent_key` and never cleared: an emptied container costs one look-up that finds
//! nothing, a flag that was never set would hide contents.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Marks every object that is some object's parent (run once after this migration and
/// after a bulk load that wrote `parent_key` without the flag).
pub const MARK_HOLDERS: &str = "UPDATE trace_object SET holds = TRUE WHERE NOT holds AND EXISTS \
    (SELECT 1 FROM trace_object c WHERE c.organisation_id = trace_object.organisation_id \
    AND c.parent_key = trace_object.epc_key)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(TraceObject::Table)
                .add_column(boolean(TraceObject::Holds).default(false))
                .to_owned(),
        )
        .await?;
        m.get_connection().execute_unprepared(MARK_HOLDERS).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(TraceObject::Table)
                .drop_column(TraceObject::Holds)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum TraceObject {
    Table,
    Holds,
}
