//! Returns verification (GS1 Lightweight Messaging, DSCSA saleable returns): the
//! manufacturer data the responder answers from (serials, lot status, per-manufacturer
//! policy), the trading partners allowed to ask, the audit log of every LMS exchange in
//! either direction, and the verification record of every returned pack.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The organisation's own party GLN: what it answers as (`responderGLN`) and asks
        // as (`reqGLN`) in LMS exchanges.
        m.alter_table(
            Table::alter()
                .table(Organisation::Table)
                .add_column(string_len_null(Organisation::Gln, 13))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(VerificationSerial::Table)
                .col(string(VerificationSerial::OrganisationId))
                .col(string_len(VerificationSerial::Gtin, 14))
                .col(string(VerificationSerial::Serial))
                .col(string(VerificationSerial::Lot))
                // YYMMDD exactly as on the pack (DD may be 00): compared as printed.
                .col(string_len(VerificationSerial::Expiry, 6))
                // `active`, `decommissioned`, `suspect` or `illegitimate`.
                .col(string_len(VerificationSerial::Status, 16))
                // Where the row came from: `csv:<file>`, `epcis:<eventID>`, `api`.
                .col(string(VerificationSerial::Source))
                .col(big_integer(VerificationSerial::UpdatedAtMs))
                // The responder's one query is a point look-up on this key.
                .primary_key(
                    Index::create()
                        .col(VerificationSerial::OrganisationId)
                        .col(VerificationSerial::Gtin)
                        .col(VerificationSerial::Serial),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VerificationLot::Table)
                .col(string(VerificationLot::OrganisationId))
                .col(string_len(VerificationLot::Gtin, 14))
                .col(string(VerificationLot::Lot))
                .col(boolean(VerificationLot::Recalled).default(false))
                // An expiry extended by FDA for the whole lot (YYMMDD), if any.
                .col(string_len_null(VerificationLot::ExpiryExtendedTo, 6))
                .col(big_integer(VerificationLot::UpdatedAtMs))
                .primary_key(
                    Index::create()
                        .col(VerificationLot::OrganisationId)
                        .col(VerificationLot::Gtin)
                        .col(VerificationLot::Lot),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VerificationPolicy::Table)
                .col(string(VerificationPolicy::OrganisationId))
                // A GTIN prefix naming one manufacturer (usually its GS1 company prefix,
                // written as it appears in the GTIN-14 after the indicator digit, or any
                // leading digits of the GTIN-14); the longest matching prefix wins.
                .col(string_len(VerificationPolicy::GtinPrefix, 14))
                .col(string(VerificationPolicy::Manufacturer))
                // Each: `verified` (answer verified=true with additionalInfo),
                // `manufacturer_policy` or `not_for_redistribution` (verified=false with
                // that failure reason and additionalInfo).
                .col(string_len(VerificationPolicy::OnRecalled, 24))
                .col(string_len(VerificationPolicy::OnExpired, 24))
                .col(string_len(VerificationPolicy::OnSuspect, 24))
                // Whether a mismatch says which element differs (lot, expiry) or only
                // `No_reason_provided`: some manufacturers disclose nothing, so that
                // serial numbers cannot be probed lot by lot.
                .col(boolean(VerificationPolicy::DiscloseMismatch).default(true))
                .col(big_integer(VerificationPolicy::UpdatedAtMs))
                .primary_key(
                    Index::create()
                        .col(VerificationPolicy::OrganisationId)
                        .col(VerificationPolicy::GtinPrefix),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VerificationPartner::Table)
                .col(string(VerificationPartner::Id).primary_key())
                .col(string(VerificationPartner::OrganisationId))
                .col(string_len(VerificationPartner::Gln, 13))
                .col(string(VerificationPartner::Name))
                // SHA-256 (hex) of the partner's API key; the key itself is shown once.
                .col(string_len(VerificationPartner::KeyHash, 64))
                // `active` or `suspended` (a suspended partner is known but not permitted).
                .col(string_len(VerificationPartner::Status, 16))
                .col(big_integer(VerificationPartner::CreatedAtMs))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_verification_partner_key")
                .table(VerificationPartner::Table)
                .col(VerificationPartner::KeyHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_verification_partner_org_gln")
                .table(VerificationPartner::Table)
                .col(VerificationPartner::OrganisationId)
                .col(VerificationPartner::Gln)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VerificationExchange::Table)
                .col(big_pk_auto(VerificationExchange::Pk))
                .col(string_null(VerificationExchange::OrganisationId))
                // `inbound` (we answered) or `outbound` (we asked a peer).
                .col(string_len(VerificationExchange::Direction, 8))
                .col(string_null(VerificationExchange::CorrUuid))
                .col(string_null(VerificationExchange::RequestorGln))
                .col(string_null(VerificationExchange::ResponderGln))
                .col(string_null(VerificationExchange::PeerUrl))
                .col(string_null(VerificationExchange::Context))
                .col(string_null(VerificationExchange::Gtin))
                .col(string_null(VerificationExchange::Lot))
                .col(string_null(VerificationExchange::Serial))
                .col(string_null(VerificationExchange::Expiry))
                // The request line as sent or received (path and query).
                .col(text(VerificationExchange::Request))
                .col(integer_null(VerificationExchange::HttpStatus))
                .col(text_null(VerificationExchange::ResponseBody))
                .col(boolean_null(VerificationExchange::Verified))
                .col(string_null(VerificationExchange::FailureReason))
                .col(string_null(VerificationExchange::AdditionalInfo))
                // Transport failure, timeout or open circuit, in words.
                .col(text_null(VerificationExchange::Error))
                .col(string_null(VerificationExchange::ScanId))
                .col(big_integer(VerificationExchange::StartedAtMs))
                .col(big_integer(VerificationExchange::DurationUs))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_verification_exchange_serial")
                .table(VerificationExchange::Table)
                .col(VerificationExchange::Gtin)
                .col(VerificationExchange::Serial)
                .col(VerificationExchange::StartedAtMs)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_verification_exchange_scan")
                .table(VerificationExchange::Table)
                .col(VerificationExchange::ScanId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ReturnVerification::Table)
                .col(string(ReturnVerification::OrganisationId))
                .col(string(ReturnVerification::ScanId))
                .col(string(ReturnVerification::DocumentId))
                .col(string_null(ReturnVerification::SiteId))
                .col(string_null(ReturnVerification::UserId))
                .col(string_null(ReturnVerification::DeviceId))
                .col(string_len(ReturnVerification::Gtin, 14))
                .col(string(ReturnVerification::Serial))
                .col(string_null(ReturnVerification::Lot))
                .col(string_len_null(ReturnVerification::Expiry, 6))
                // `pending`, `sellable`, `quarantined` (failed) or `review` (verified with
                // additional information other than ExpirationExtended).
                .col(string_len(ReturnVerification::State, 16))
                .col(boolean_null(ReturnVerification::Verified))
                .col(string_null(ReturnVerification::FailureReason))
                .col(string_null(ReturnVerification::AdditionalInfo))
                // Who answered: `local` (our own data) or the peer's URL.
                .col(string_null(ReturnVerification::Responder))
                .col(big_integer_null(ReturnVerification::ExchangePk))
                .col(integer(ReturnVerification::Attempts).default(0))
                .col(text_null(ReturnVerification::LastError))
                .col(big_integer(ReturnVerification::NextAttemptMs))
                .col(big_integer(ReturnVerification::ScannedAtMs))
                .col(big_integer_null(ReturnVerification::DecidedAtMs))
                // When the decision's events, stock state and exception were written
                // (after the returns scan itself was projected); exactly once.
                .col(big_integer_null(ReturnVerification::AppliedAtMs))
                .primary_key(
                    Index::create()
                        .col(ReturnVerification::OrganisationId)
                        .col(ReturnVerification::ScanId),
                )
                .to_owned(),
        )
        .await?;
        // The retry queue: pending records due for another attempt.
        m.create_index(
            Index::create()
                .name("ix_return_verification_due")
                .table(ReturnVerification::Table)
                .col(ReturnVerification::State)
                .col(ReturnVerification::NextAttemptMs)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ReturnVerification::Table.into_iden(),
            VerificationExchange::Table.into_iden(),
            VerificationPartner::Table.into_iden(),
            VerificationPolicy::Table.into_iden(),
            VerificationLot::Table.into_iden(),
            VerificationSerial::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        m.alter_table(
            Table::alter()
                .table(Organisation::Table)
                .drop_column(Organisation::Gln)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Organisation {
    Table,
    Gln,
}

#[derive(DeriveIden)]
enum VerificationSerial {
    Table,
    OrganisationId,
    Gtin,
    Serial,
    Lot,
    Expiry,
    Status,
    Source,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum VerificationLot {
    Table,
    OrganisationId,
    Gtin,
    Lot,
    Recalled,
    ExpiryExtendedTo,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum VerificationPolicy {
    Table,
    OrganisationId,
    GtinPrefix,
    Manufacturer,
    OnRecalled,
    OnExpired,
    OnSuspect,
    DiscloseMismatch,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum VerificationPartner {
    Table,
    Id,
    OrganisationId,
    Gln,
    Name,
    KeyHash,
    Status,
    CreatedAtMs,
}

#[derive(DeriveIden)]
enum VerificationExchange {
    Table,
    Pk,
    OrganisationId,
    Direction,
    CorrUuid,
    RequestorGln,
    ResponderGln,
    PeerUrl,
    Context,
    Gtin,
    Lot,
    Serial,
    Expiry,
    Request,
    HttpStatus,
    ResponseBody,
    Verified,
    FailureReason,
    AdditionalInfo,
    Error,
    ScanId,
    StartedAtMs,
    DurationUs,
}

#[derive(DeriveIden)]
enum ReturnVerification {
    Table,
    OrganisationId,
    ScanId,
    DocumentId,
    SiteId,
    UserId,
    DeviceId,
    Gtin,
    Serial,
    Lot,
    Expiry,
    State,
    Verified,
    FailureReason,
    AdditionalInfo,
    Responder,
    ExchangePk,
    Attempts,
    LastError,
    NextAttemptMs,
    ScannedAtMs,
    DecidedAtMs,
    AppliedAtMs,
}
