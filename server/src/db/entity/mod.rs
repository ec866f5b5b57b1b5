//! sea-orm entities, one module per table. The schema itself lives in `swt-migrations`.

pub mod app_user;
pub mod device;
pub mod epcis_event;
pub mod epcis_event_epc;
pub mod erp_order;
pub mod erp_order_request;
pub mod exception_note;
pub mod integration_account;
pub mod login_throttle;
pub mod organisation;
pub mod outbox_event;
pub mod outbox_sequence;
pub mod product;
pub mod projected_scan;
pub mod reference_item;
pub mod reference_version;
pub mod refresh_token;
pub mod return_verification;
pub mod scan_activity;
pub mod signing_key;
pub mod site;
pub mod stock_level;
pub mod sync_refusal;
pub mod sync_state;
pub mod task_document;
pub mod task_document_change;
pub mod trace_exception;
pub mod trace_exception_scan;
pub mod trace_object;
pub mod verification_exchange;
pub mod verification_lot;
pub mod verification_partner;
pub mod verification_policy;
pub mod verification_serial;
pub mod webhook_subscription;

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::trace_object::UnitStatus;
    use super::{projected_scan::ProjectionOutcome, return_verification::ReturnState};

    /// The code each enum names itself by is the code the database stores, for every
    /// variant (the two are written side by side and must never drift).
    #[test]
    fn stored_codes_are_the_codes_the_enums_name() {
        for s in UnitStatus::iter() {
            assert_eq!(s.as_str(), s.to_value(), "{s:?}");
            assert_eq!(UnitStatus::try_from_value(&s.as_str().to_owned()), Ok(s));
        }
        for s in ProjectionOutcome::iter() {
            assert_eq!(s.as_str(), s.to_value(), "{s:?}");
            // And the code a scanner reads in the document's results.
            assert_eq!(
                swt_domain::doc::ProjectionOutcome::from(s).as_str(),
                s.as_str()
            );
        }
        assert_eq!(
            ProjectionOutcome::iter().count(),
            swt_domain::doc::ProjectionOutcome::ALL.len()
        );
        for s in ReturnState::iter() {
            assert_eq!(s.as_str(), s.to_value(), "{s:?}");
        }
        assert!(UnitStatus::try_from_value(&"lost".to_owned()).is_err());
    }
}
