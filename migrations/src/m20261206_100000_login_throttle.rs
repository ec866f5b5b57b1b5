//! `login_throttle`: one counter row per throttling scope (a user name from one address,
//! a user name from anywhere, an address for any name), replacing the one-row-per-failure
//! `login_failure` table. A counter is raised with one atomic upsert, so concurrent
//! attempts (also from several server processes) never check more than the limit, and
//! the table holds one row per scope instead of one per attempt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LoginThrottle::Table)
                // SHA-256 (hex) of the scope: fixed size whatever name was typed, and no
                // mistyped passwords-as-user-names kept in clear.
                .col(string_len(LoginThrottle::ScopeKey, 64).primary_key())
                // Attempts counted in the current window (including the one in progress).
                .col(integer(LoginThrottle::Attempts))
                // Unix seconds when the window began; plain integers compare the same way
                // on both back-ends.
                .col(big_integer(LoginThrottle::WindowStart))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_login_throttle_window")
                .table(LoginThrottle::Table)
                .col(LoginThrottle::WindowStart)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(LoginFailure::Table).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(LoginThrottle::Table).to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table(LoginFailure::Table)
                .col(pk_auto(LoginFailure::Id))
                .col(string(LoginFailure::Username))
                .col(timestamp_with_time_zone(LoginFailure::At))
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum LoginThrottle {
    Table,
    ScopeKey,
    Attempts,
    WindowStart,
}

#[derive(DeriveIden)]
enum LoginFailure {
    Table,
    Id,
    Username,
    At,
}
