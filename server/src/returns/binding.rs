//! What a verification holds for, and how a request's binding can differ from a record's.

use swt_domain::model::{Action as ScanAction, Scan};

use crate::db::entity::return_verification;

/// What a verification holds for: one scan's task, device, user and exact product
/// identifier. A verdict is applied only to the synced scan with the same binding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    /// Task document.
    pub document_id: String,
    /// Device that scanned (and asked).
    pub device_id: Option<String>,
    /// User that scanned (and asked).
    pub user_id: Option<String>,
    /// GTIN-14.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry, YYMMDD.
    pub expiry: Option<String>,
}

/// How a verification request's binding differs from the record under its scan id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingConflict {
    /// Another device or user made the record.
    #[error("this scan id was verified for another device or user")]
    OtherCaller,
    /// The record is for a scan of another task.
    #[error("this scan id belongs to another task")]
    OtherTask,
    /// Same caller and task, other product identifier: a scan's identifiers never change.
    #[error("this scan id was verified with other identifiers (GTIN, serial, lot, expiry)")]
    OtherIdentifiers,
}

impl Binding {
    /// The binding a record holds.
    pub fn of_record(r: &return_verification::Model) -> Binding {
        Binding {
            document_id: r.document_id.clone(),
            device_id: r.device_id.clone(),
            user_id: r.user_id.clone(),
            gtin: r.gtin.clone(),
            serial: r.serial.clone(),
            lot: r.lot.clone(),
            expiry: r.expiry.clone(),
        }
    }

    /// The binding of a synced scan; `None` unless it is a return of a serialized pack.
    pub fn of_scan(doc_id: &str, s: &Scan) -> Option<Binding> {
        if s.action != ScanAction::Return {
            return None;
        }
        Some(Binding {
            document_id: doc_id.to_owned(),
            device_id: Some(s.device.clone()),
            user_id: Some(s.user.clone()),
            // GTIN-14, the form the online path stores, so bindings compare equal.
            gtin: s.ids.gtin?.to_string(),
            serial: s.ids.serial.clone()?,
            lot: s.ids.lot.clone(),
            expiry: s.ids.expiry.clone(),
        })
    }

    /// Why `asked` may not use the record bound to `self`, if it may not.
    pub fn conflict(&self, asked: &Binding) -> Option<BindingConflict> {
        if self.device_id != asked.device_id || self.user_id != asked.user_id {
            Some(BindingConflict::OtherCaller)
        } else if self.document_id != asked.document_id {
            Some(BindingConflict::OtherTask)
        } else if self != asked {
            Some(BindingConflict::OtherIdentifiers)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Binding, BindingConflict};

    fn b() -> Binding {
        Binding {
            document_id: "t1".into(),
            device_id: Some("d1".into()),
            user_id: Some("u1".into()),
            gtin: "00312345678906".into(),
            serial: "A".into(),
            lot: Some("L".into()),
            expiry: Some("300131".into()),
        }
    }

    #[test]
    fn a_binding_conflicts_first_on_who_then_task_then_identifiers() {
        assert_eq!(b().conflict(&b()), None);
        let other_device = Binding {
            device_id: Some("d2".into()),
            serial: "B".into(),
            ..b()
        };
        assert_eq!(
            b().conflict(&other_device),
            Some(BindingConflict::OtherCaller)
        );
        let other_user = Binding {
            user_id: None,
            ..b()
        };
        assert_eq!(
            b().conflict(&other_user),
            Some(BindingConflict::OtherCaller)
        );
        let other_task = Binding {
            document_id: "t2".into(),
            ..b()
        };
        assert_eq!(b().conflict(&other_task), Some(BindingConflict::OtherTask));
        for changed in [
            Binding {
                serial: "B".into(),
                ..b()
            },
            Binding { lot: None, ..b() },
            Binding {
                expiry: Some("300130".into()),
                ..b()
            },
            Binding {
                gtin: "00312345678913".into(),
                ..b()
            },
        ] {
            assert_eq!(
                b().conflict(&changed),
                Some(BindingConflict::OtherIdentifiers)
            );
        }
    }
}
