//! Identity: users, roles, devices, password hashing, access and refresh tokens, and
//! the `Principal` every API route takes.

pub mod devices;
pub mod integration;
pub mod keys;
pub mod password;
pub mod principal;
pub mod revocation;
pub mod routes;
pub mod service;
pub mod throttle;
pub mod token;

pub use principal::Principal;

/// The roles a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Receives, picks, packs and ships on a scanner.
    Picker,
    /// Handles saleable returns and their verification.
    ReturnsClerk,
    /// Sees everything of the organisation; creates tasks; resolves exceptions.
    Manager,
    /// Manages users, devices and settings.
    Admin,
    /// An ERP's integration account: sends orders that become tasks and reads the stock,
    /// nothing else. Never a person's role (see [`integration`]).
    Integration,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "picker" => Ok(Self::Picker),
            "returns_clerk" => Ok(Self::ReturnsClerk),
            "manager" => Ok(Self::Manager),
            "admin" => Ok(Self::Admin),
            "integration" => Ok(Self::Integration),
            other => Err(format!(
                "unknown role {other:?}: expected picker, returns_clerk, manager or admin"
            )),
        }
    }
}

impl Role {
    /// The stored name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Picker => "picker",
            Self::ReturnsClerk => "returns_clerk",
            Self::Manager => "manager",
            Self::Admin => "admin",
            Self::Integration => "integration",
        }
    }
}
