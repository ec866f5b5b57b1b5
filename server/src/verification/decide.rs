//! The responder's answer for one identifier, from the manufacturer data we hold. Pure.

use swt_domain::gs1::Date;

use super::lms::{AdditionalInfo, FailureReason, ProductId, Verdict};
pub use crate::serials::SerialStatus;
use serde::{Deserialize, Serialize};

/// How a manufacturer wants a recalled, expired or suspect pack answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// `verified: true` with `additionalInfo`.
    Verified,
    /// `verified: false`, `Manufacturer_policy`, with `additionalInfo`.
    ManufacturerPolicy,
    /// `verified: false`, `Not_for_re-distribution`, with `additionalInfo`.
    NotForRedistribution,
}

impl PolicyAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::ManufacturerPolicy => "manufacturer_policy",
            Self::NotForRedistribution => "not_for_redistribution",
        }
    }
}

impl std::str::FromStr for PolicyAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "verified" => Ok(Self::Verified),
            "manufacturer_policy" => Ok(Self::ManufacturerPolicy),
            "not_for_redistribution" => Ok(Self::NotForRedistribution),
            other => Err(format!(
                "unknown policy {other:?}: expected verified, manufacturer_policy or not_for_redistribution"
            )),
        }
    }
}

/// A manufacturer's policy. The default answers `verified: true` with the additional
/// information, the commonest published scenario, and leaves the decision to the
/// requestor (which never resells such a pack without review).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// For a pack of a recalled lot.
    pub on_recalled: PolicyAction,
    /// For a pack past its (possibly extended) expiry.
    pub on_expired: PolicyAction,
    /// For a suspect pack.
    pub on_suspect: PolicyAction,
    /// Say which element did not match; `false` answers every mismatch with
    /// `No_reason_provided`.
    pub disclose_mismatch: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            on_recalled: PolicyAction::Verified,
            on_expired: PolicyAction::Verified,
            on_suspect: PolicyAction::Verified,
            disclose_mismatch: true,
        }
    }
}

/// The manufacturer data held for one serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Lot commissioned.
    pub lot: String,
    /// Expiry commissioned (YYMMDD).
    pub expiry: String,
    /// Serial status.
    pub status: SerialStatus,
    /// The lot is recalled.
    pub lot_recalled: bool,
    /// The lot's expiry as extended by FDA (YYMMDD), if it was.
    pub expiry_extended_to: Option<String>,
}

/// Answers for `id` given what we hold about its GTIN + serial (`None`: nothing) on
/// `today`. Identifier mismatches come first (the identifier does not verify, status is
/// then irrelevant); among conditions the gravest wins: illegitimate, decommissioned,
/// suspect, recalled, expired, expiry extended.
pub fn decide(id: &ProductId, held: Option<&Held>, policy: &Policy, today: Date) -> Verdict {
    let mismatch = |reason| {
        no(
            if policy.disclose_mismatch {
                reason
            } else {
                FailureReason::NoReasonProvided
            },
            None,
        )
    };
    let Some(h) = held else {
        return mismatch(FailureReason::NoMatchGtinSerial);
    };
    match (h.lot == id.lot, h.expiry == id.expiry) {
        (true, true) => {}
        (false, true) => return mismatch(FailureReason::NoMatchGtinSerialLot),
        (true, false) => return mismatch(FailureReason::NoMatchGtinSerialExpiry),
        (false, false) => return mismatch(FailureReason::NoMatchGtinSerialLotExpiry),
    }
    match h.status {
        SerialStatus::Illegitimate => {
            return no(
                FailureReason::NotForRedistribution,
                Some(AdditionalInfo::Illegitimate),
            );
        }
        SerialStatus::Decommissioned => return no(FailureReason::NotForRedistribution, None),
        SerialStatus::Suspect => return apply(policy.on_suspect, AdditionalInfo::Suspect),
        SerialStatus::Active => {}
    }
    if h.lot_recalled {
        return apply(policy.on_recalled, AdditionalInfo::Recalled);
    }
    let year = today.year;
    let expired = |yymmdd: &str| Date::from_yymmdd(yymmdd, year).is_none_or(|d| d < today);
    if expired(&h.expiry) {
        return match h.expiry_extended_to.as_deref() {
            Some(ext) if !expired(ext) => Verdict {
                verified: true,
                failure_reason: None,
                additional_info: Some(AdditionalInfo::ExpirationExtended),
            },
            _ => apply(policy.on_expired, AdditionalInfo::Expired),
        };
    }
    Verdict {
        verified: true,
        failure_reason: None,
        additional_info: None,
    }
}

fn no(reason: FailureReason, info: Option<AdditionalInfo>) -> Verdict {
    Verdict {
        verified: false,
        failure_reason: Some(reason),
        additional_info: info,
    }
}

fn apply(action: PolicyAction, info: AdditionalInfo) -> Verdict {
    match action {
        PolicyAction::Verified => Verdict {
            verified: true,
            failure_reason: None,
            additional_info: Some(info),
        },
        PolicyAction::ManufacturerPolicy => no(FailureReason::ManufacturerPolicy, Some(info)),
        PolicyAction::NotForRedistribution => no(FailureReason::NotForRedistribution, Some(info)),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn policy_actions_read_back_from_their_stored_names() {
        for p in [
            PolicyAction::Verified,
            PolicyAction::ManufacturerPolicy,
            PolicyAction::NotForRedistribution,
        ] {
            assert_eq!(p.as_str().parse::<PolicyAction>(), Ok(p));
        }
        assert!("sellable".parse::<PolicyAction>().is_err());
    }
    use super::*;
    use AdditionalInfo as I;
    use FailureReason as R;

    fn id() -> ProductId {
        ProductId::new("00312345678906", "LOT42", "SN1", "270131").unwrap()
    }

    fn held() -> Held {
        Held {
            lot: "LOT42".into(),
            expiry: "270131".into(),
            status: SerialStatus::Active,
            lot_recalled: false,
            expiry_extended_to: None,
        }
    }

    fn today() -> Date {
        Date::new(2026, 11, 24).unwrap()
    }

    fn answer(h: Option<&Held>, p: &Policy) -> (bool, Option<R>, Option<I>) {
        let v = decide(&id(), h, p, today());
        (v.verified, v.failure_reason, v.additional_info)
    }

    #[test]
    fn matches_and_mismatches() {
        let p = Policy::default();
        assert_eq!(answer(Some(&held()), &p), (true, None, None));
        assert_eq!(answer(None, &p), (false, Some(R::NoMatchGtinSerial), None));
        let lot = Held {
            lot: "LOT41".into(),
            ..held()
        };
        assert_eq!(
            answer(Some(&lot), &p),
            (false, Some(R::NoMatchGtinSerialLot), None)
        );
        let exp = Held {
            expiry: "270130".into(),
            ..held()
        };
        assert_eq!(
            answer(Some(&exp), &p),
            (false, Some(R::NoMatchGtinSerialExpiry), None)
        );
        let both = Held {
            lot: "X".into(),
            expiry: "270130".into(),
            ..held()
        };
        assert_eq!(
            answer(Some(&both), &p),
            (false, Some(R::NoMatchGtinSerialLotExpiry), None)
        );
        // A mismatch wins over any status: the identifier itself does not verify.
        let bad = Held {
            lot: "X".into(),
            status: SerialStatus::Illegitimate,
            ..held()
        };
        assert_eq!(
            answer(Some(&bad), &p),
            (false, Some(R::NoMatchGtinSerialLot), None)
        );
    }

    #[test]
    fn statuses_follow_the_policy() {
        let dflt = Policy::default();
        let strict = Policy {
            on_recalled: PolicyAction::ManufacturerPolicy,
            on_expired: PolicyAction::ManufacturerPolicy,
            on_suspect: PolicyAction::NotForRedistribution,
            disclose_mismatch: true,
        };
        let suspect = Held {
            status: SerialStatus::Suspect,
            ..held()
        };
        assert_eq!(
            answer(Some(&suspect), &dflt),
            (true, None, Some(I::Suspect))
        );
        assert_eq!(
            answer(Some(&suspect), &strict),
            (false, Some(R::NotForRedistribution), Some(I::Suspect))
        );
        let recalled = Held {
            lot_recalled: true,
            ..held()
        };
        assert_eq!(
            answer(Some(&recalled), &dflt),
            (true, None, Some(I::Recalled))
        );
        assert_eq!(
            answer(Some(&recalled), &strict),
            (false, Some(R::ManufacturerPolicy), Some(I::Recalled))
        );
        let illegit = Held {
            status: SerialStatus::Illegitimate,
            lot_recalled: true,
            ..held()
        };
        for p in [&dflt, &strict] {
            assert_eq!(
                answer(Some(&illegit), p),
                (false, Some(R::NotForRedistribution), Some(I::Illegitimate))
            );
        }
        let gone = Held {
            status: SerialStatus::Decommissioned,
            ..held()
        };
        assert_eq!(
            answer(Some(&gone), &dflt),
            (false, Some(R::NotForRedistribution), None)
        );
    }

    #[test]
    fn expiry_and_extension() {
        let id = ProductId::new("00312345678906", "LOT42", "SN1", "260100").unwrap();
        let h = Held {
            expiry: "260100".into(),
            ..held()
        };
        let p = Policy::default();
        let strict = Policy {
            on_expired: PolicyAction::ManufacturerPolicy,
            ..p
        };
        let v = decide(&id, Some(&h), &p, today());
        assert_eq!((v.verified, v.additional_info), (true, Some(I::Expired)));
        let v = decide(&id, Some(&h), &strict, today());
        assert_eq!(
            (v.verified, v.failure_reason, v.additional_info),
            (false, Some(R::ManufacturerPolicy), Some(I::Expired))
        );
        let ext = Held {
            expiry_extended_to: Some("270600".into()),
            ..h.clone()
        };
        let v = decide(&id, Some(&ext), &strict, today());
        assert_eq!(
            (v.verified, v.additional_info),
            (true, Some(I::ExpirationExtended))
        );
        let ext_over = Held {
            expiry_extended_to: Some("261000".into()),
            ..h
        };
        let v = decide(&id, Some(&ext_over), &strict, today());
        assert_eq!(v.additional_info, Some(I::Expired));
        // Expiry day 00 is the month's last day: a pack expiring "261100" is still good on 24 Nov.
        let id = ProductId::new("00312345678906", "LOT42", "SN1", "261100").unwrap();
        let h = Held {
            expiry: "261100".into(),
            ..held()
        };
        assert!(decide(&id, Some(&h), &p, today()).additional_info.is_none());
    }
}
