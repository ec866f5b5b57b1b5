//! Identity: password hashing now; tokens, roles and devices as they arrive.

pub mod password;

/// The roles a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
}

impl Role {
    /// The stored name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Picker => "picker",
            Self::ReturnsClerk => "returns_clerk",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }
}
